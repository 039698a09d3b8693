//! Closing a metrics interval: every node's counters, time integrals and histograms become a
//! row of [`MetricsHistory`](crate::metrics::MetricsHistory), are added to the run totals and
//! reset; health changes are logged.
//!
//! Cost is one pass over nodes and links per interval (not per request); a node with no
//! recorded latency skips its percentile pass and histogram reset.

use super::step::Ctx;
use crate::causality::CauseSite;
use crate::events::SimEventKind;
use crate::metrics::{
    EdgeRow, Health, MetricsHistory, NodeCounters, NodeRow, QUANTILES, SourcePoint, SystemRow,
};
use crate::time::Nanos;

impl Ctx<'_, '_> {
    /// Closes the interval that ends at `end_ns`.
    pub(crate) fn close_interval(&mut self, end_ns: Nanos) {
        self.sync_planned_instances(end_ns);
        let k = self.history.intervals();
        let cap = self.history.rows_per_node;
        self.history
            .services
            .resize_with(self.services.len(), Default::default);
        self.history
            .sources
            .resize_with(self.sources.len(), Default::default);
        self.history
            .source_series
            .resize_with(self.sources.len(), Default::default);
        self.history
            .edges
            .resize_with(self.e.links.len(), Default::default);
        let mechanisms = self.e.model.services.iter().any(|s| s.mech.is_some())
            || self.instances.iter().any(|i| i.mech.is_some());
        let open_breakers = if mechanisms {
            self.open_breakers(end_ns)
        } else {
            Vec::new()
        };

        for s in 0..self.services.len() {
            let mut c: NodeCounters = self.services[s].metrics.interval;
            let mut live = 0;
            for i in 0..self.services[s].instances.len() {
                let g = self.services[s].instances[i] as usize;
                let is = &mut *self.instances[g];
                is.drain_integrals(end_ns, &mut c);
                if is.serving() {
                    live += 1;
                }
            }
            let removed = self.e.model.services[s].removed;
            let svc = &mut *self.services[s];
            let latency_ms = if svc.metrics.hist.is_empty() {
                [0.0; 4]
            } else {
                svc.metrics.hist.quantiles_ms(QUANTILES)
            };
            let health = if removed {
                Health::Idle
            } else {
                Health::classify(&c, live)
            };
            let gauges = if mechanisms {
                let mut g = self.gauges(s as u32, end_ns);
                g.breakers_open = open_breakers.get(s).copied().unwrap_or(0);
                g
            } else {
                // Without mechanisms every instance in rotation is one the balancer trusts.
                crate::metrics::Gauges {
                    healthy_instances: self.services[s].routable.len() as u32,
                    ..Default::default()
                }
            };
            let svc = &mut *self.services[s];
            let row = NodeRow {
                interval: k,
                counters: c,
                latency_ms,
                live_instances: live,
                health,
                gauges,
            };
            if health != svc.metrics.health && !removed {
                let from = svc.metrics.health;
                svc.metrics.health = health;
                let node = self.e.model.services[s].name.clone();
                self.e.events.push(crate::events::SimEvent {
                    time_ns: end_ns,
                    kind: SimEventKind::HealthChanged {
                        node,
                        from,
                        to: health,
                    },
                });
            }
            svc.live_instances = live;
            svc.metrics.totals.add(&c);
            svc.metrics.interval = NodeCounters::default();
            if !svc.metrics.hist.is_empty() {
                svc.metrics.hist_total.add(&svc.metrics.hist);
                svc.metrics.hist.clear();
            }
            MetricsHistory::push_row(cap, &mut self.history.services[s], row);
        }

        let mut system = SystemRow {
            interval: k,
            hops: self.e.hops_interval,
            ..Default::default()
        };
        for s in 0..self.sources.len() {
            let src = &mut *self.sources[s];
            let c = src.metrics.interval;
            system.offered += c.offered_first;
            system.goodput += c.goodput;
            let series = &mut self.history.source_series[s];
            series.resize(k as usize, SourcePoint::default());
            series.push(SourcePoint {
                offered: c.offered_first,
                goodput: c.goodput,
            });
            let latency_ms = if src.metrics.hist.is_empty() {
                [0.0; 4]
            } else {
                src.metrics.hist.quantiles_ms(QUANTILES)
            };
            let health = source_health(&c);
            src.metrics.health = health;
            let row = NodeRow {
                interval: k,
                counters: c,
                latency_ms,
                live_instances: 0,
                health,
                gauges: Default::default(),
            };
            src.metrics.totals.add(&c);
            src.metrics.interval = NodeCounters::default();
            if !src.metrics.hist.is_empty() {
                src.metrics.hist_total.add(&src.metrics.hist);
                src.metrics.hist.clear();
            }
            MetricsHistory::push_row(cap, &mut self.history.sources[s], row);
        }

        for (l, link) in self.e.links.iter_mut().enumerate() {
            let row = EdgeRow {
                interval: k,
                counters: link.interval,
            };
            link.totals.add(&link.interval);
            link.interval = Default::default();
            MetricsHistory::push_row(cap, &mut self.history.edges[l], row);
        }

        self.close_causes(k, cap);

        let interval_ns = self.e.model.interval_ticks * self.e.model.tick_ns;
        let start_ns = end_ns.saturating_sub(interval_ns);
        // A fault is a trigger in the intervals its [start, end) overlaps — in effect for
        // some time in them, however it ended: at its scripted end or cleared by a command,
        // even exactly on a boundary — and an instantaneous one in the interval it acted in
        // (`trigger_in_interval`, set when it starts).
        let fault_in_effect = self.e.faults.iter().any(|f| {
            !f.kind.is_instantaneous()
                && f.start_ns < f.end_ns
                && f.start_ns < end_ns
                && f.end_ns > start_ns
        });
        system.trigger_active =
            self.e.trigger_in_interval || fault_in_effect || self.spike_overlaps(start_ns, end_ns);
        self.history.system.push(system);
        self.e.hops_total += self.e.hops_interval;
        self.e.hops_interval = 0;
        self.e.trigger_in_interval = false;
        if mechanisms {
            self.run_autoscalers(end_ns);
        }
        if !self.e.model.alerts.is_empty() {
            self.run_alerts(interval_ns);
        }
    }

    /// Moves the open interval `k`'s failure origins (sources' and links') into the history,
    /// which keeps the last `cap` intervals of them.
    fn close_causes(&mut self, k: u32, cap: usize) {
        let causes = &mut self.history.causes;
        for (s, src) in self.sources.iter_mut().enumerate() {
            causes.record_tally(k, CauseSite::Source(s as u32), &mut src.failure_origins);
        }
        for (l, link) in self.e.links.iter_mut().enumerate() {
            causes.record_tally(k, CauseSite::Link(l as u32), &mut link.failure_origins);
        }
        self.history
            .causes
            .prune_before((k + 1).saturating_sub(cap as u32));
    }

    /// True if some source's spike overlaps `[from_ns, to_ns)`.
    pub(crate) fn spike_overlaps(&self, from_ns: Nanos, to_ns: Nanos) -> bool {
        let (a, b) = (from_ns as f64 / 1e9, to_ns as f64 / 1e9);
        self.e.model.sources.iter().any(|s| {
            matches!(s.rate, crate::scenario::RateProfile::Spike { start_s, duration_s, .. }
                if !s.removed && start_s < b && start_s + duration_s > a)
        })
    }
}

/// Health of a source from its client-side success ratio.
fn source_health(c: &NodeCounters) -> Health {
    let done = c.succeeded + c.failed_total();
    if done == 0 {
        return if c.offered_first == 0 {
            Health::Idle
        } else {
            Health::Degraded
        };
    }
    let ok = c.succeeded as f64 / done as f64;
    if c.succeeded == 0 && done >= 10 {
        Health::Down
    } else if ok <= 0.5 {
        Health::Failing
    } else if ok < 0.99 {
        Health::Degraded
    } else {
        Health::Healthy
    }
}
