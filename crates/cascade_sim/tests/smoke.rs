use cascade_sim::scenario::load;
use cascade_sim::Simulation;

#[test]
fn mm1_runs() {
    let s = load(std::path::Path::new("../../scenarios/validation/mm1.ron")).unwrap();
    let mut sim = Simulation::new(&s);
    let t = std::time::Instant::now();
    sim.run_to(200.0, |_| {});
    let sum = sim.summary();
    println!("{}", serde_json::to_string_pretty(&sum).unwrap());
    println!("wall {:?}", t.elapsed());
}

#[test]
fn three_tier_runs() {
    let s = load(std::path::Path::new("../../scenarios/bench/three-tier.ron")).unwrap();
    let mut sim = Simulation::new(&s);
    let t = std::time::Instant::now();
    sim.run_to(300.0, |_| {});
    println!("wall {:?}", t.elapsed());
    let sum = sim.summary();
    println!("{}", serde_json::to_string_pretty(&sum).unwrap());
    println!("wall {:?} hops {}", t.elapsed(), sum.hops);
}
