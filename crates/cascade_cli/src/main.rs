//! cascade-cli
fn main() {}
