//! Requests, not just rates: one model's backlog as a FIFO of fluid request batches (one per
//! tick of arrivals), served by the ready replicas' capacity, each batch's time to first token
//! its wait plus the prefill time, a batch waiting longer than the timeout failed. Counts every
//! request exactly once: offered = served + failed + still waiting. Pure arithmetic.

use std::collections::VecDeque;

/// The latency objective (scenario `slo`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    /// A request meets the SLO when its time to first token is at most this.
    pub ttft_seconds: f64,
    /// A request still waiting this long fails (the client gives up).
    pub timeout_seconds: f64,
    /// Time to first token of a request that does not wait.
    pub prefill_seconds: f64,
}

/// TTFT histogram resolution.
const BIN_SECONDS: f64 = 0.1;

/// What happened to the requests of one model (or, summed, of a whole run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub offered: f64,
    pub served: f64,
    pub failed: f64,
    /// Served with TTFT within the objective.
    pub met: f64,
    /// Served requests per TTFT bin of [`BIN_SECONDS`].
    ttft_bins: Vec<f64>,
}

impl Outcome {
    /// Adds another outcome (models of one run).
    pub fn add(&mut self, other: &Outcome) {
        self.offered += other.offered;
        self.served += other.served;
        self.failed += other.failed;
        self.met += other.met;
        if self.ttft_bins.len() < other.ttft_bins.len() {
            self.ttft_bins.resize(other.ttft_bins.len(), 0.0);
        }
        for (mine, theirs) in self.ttft_bins.iter_mut().zip(&other.ttft_bins) {
            *mine += theirs;
        }
    }

    /// The `q` quantile (0..1) of the served requests' TTFT, in seconds (upper bin edge);
    /// `None` when nothing was served.
    pub fn ttft_quantile(&self, q: f64) -> Option<f64> {
        let total: f64 = self.ttft_bins.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut seen = 0.0;
        for (i, weight) in self.ttft_bins.iter().enumerate() {
            seen += weight;
            if seen >= q * total - 1e-9 {
                return Some((i + 1) as f64 * BIN_SECONDS);
            }
        }
        Some(self.ttft_bins.len() as f64 * BIN_SECONDS)
    }

    /// `amount` requests served with this TTFT, the share `tpot_met` of them within the
    /// time-per-output-token objective.
    fn record(&mut self, amount: f64, ttft: f64, tpot_met: f64, objective: &Objective) {
        self.served += amount;
        if ttft <= objective.ttft_seconds + 1e-9 {
            self.met += amount * tpot_met;
        }
        let bin = ((ttft / BIN_SECONDS).ceil() as usize).saturating_sub(1);
        if self.ttft_bins.len() <= bin {
            self.ttft_bins.resize(bin + 1, 0.0);
        }
        self.ttft_bins[bin] += amount;
    }
}

/// One model's waiting requests.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    /// (arrival time, requests), oldest first.
    batches: VecDeque<(f64, f64)>,
    pub outcome: Outcome,
}

impl Backlog {
    /// Requests waiting now.
    pub fn waiting(&self) -> f64 {
        // `+ 0.0`: an empty sum is -0.0.
        self.batches.iter().map(|(_, n)| n).sum::<f64>() + 0.0
    }

    /// One tick at time `t`: `arrivals` requests join, those waiting longer than the timeout
    /// fail, and up to `capacity` requests are served oldest first; `tpot_met` gives the share
    /// of them that meet the time-per-output-token objective from the replicas' utilisation
    /// (served / capacity). Returns the requests served.
    pub fn tick(
        &mut self,
        t: f64,
        arrivals: f64,
        capacity: f64,
        objective: &Objective,
        tpot_met: &dyn Fn(f64) -> f64,
    ) -> f64 {
        if arrivals > 0.0 {
            self.outcome.offered += arrivals;
            self.batches.push_back((t, arrivals));
        }
        while let Some(&(at, n)) = self.batches.front() {
            if t - at > objective.timeout_seconds {
                self.outcome.failed += n;
                self.batches.pop_front();
            } else {
                break;
            }
        }
        let capacity = capacity.max(0.0);
        let served = self.waiting().min(capacity);
        let share = if served > 0.0 {
            tpot_met(served / capacity).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let mut left = served;
        while left > 1e-12 {
            let Some(front) = self.batches.front_mut() else {
                break;
            };
            let take = front.1.min(left);
            let ttft = t - front.0 + objective.prefill_seconds;
            self.outcome.record(take, ttft, share, objective);
            left -= take;
            front.1 -= take;
            if front.1 <= 1e-12 {
                self.batches.pop_front();
            }
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLO: Objective = Objective {
        ttft_seconds: 3.0,
        timeout_seconds: 60.0,
        prefill_seconds: 0.5,
    };

    fn conserved(b: &Backlog) {
        let o = &b.outcome;
        assert!(
            (o.offered - (o.served + o.failed + b.waiting())).abs() < 1e-6,
            "{o:?}, waiting {}",
            b.waiting()
        );
    }

    #[test]
    fn enough_capacity_serves_everything_at_the_prefill_time() {
        let mut b = Backlog::default();
        for t in 0..100 {
            b.tick(t as f64, 2.0, 3.0, &SLO, &|_| 1.0);
            conserved(&b);
        }
        assert_eq!(
            (b.outcome.offered, b.outcome.served, b.outcome.met),
            (200.0, 200.0, 200.0)
        );
        assert_eq!(b.outcome.ttft_quantile(0.99), Some(0.5));
    }

    #[test]
    fn an_overload_queues_then_fails_and_the_backlog_drains_afterwards() {
        let mut b = Backlog::default();
        // 200 s at twice the capacity: the queue grows by 1 request a second, and the request
        // arriving at `a` is served at `2a` — after 60 s of waiting from `a = 60` on.
        for t in 0..200 {
            b.tick(t as f64, 2.0, 1.0, &SLO, &|_| 1.0);
            conserved(&b);
        }
        assert!(
            b.outcome.failed > 0.0,
            "waits beyond 60 s fail: {:?}",
            b.outcome
        );
        assert!(b.outcome.met < b.outcome.served);
        assert!(b.outcome.ttft_quantile(0.99).unwrap() > 30.0);
        // The load stops: what is left is served or times out, nothing is lost.
        for t in 200..400 {
            b.tick(t as f64, 0.0, 1.0, &SLO, &|_| 1.0);
            conserved(&b);
        }
        assert_eq!(b.waiting(), 0.0);
    }

    #[test]
    fn without_replicas_every_request_fails_after_the_timeout() {
        let mut b = Backlog::default();
        for t in 0..200 {
            b.tick(t as f64, 1.0, 0.0, &SLO, &|_| 1.0);
        }
        conserved(&b);
        assert_eq!(b.outcome.served, 0.0);
        assert_eq!(b.outcome.failed, 200.0 - 61.0, "the last 61 s still wait");
        assert_eq!(b.outcome.ttft_quantile(0.5), None);
    }

    #[test]
    fn busy_replicas_miss_the_time_per_output_token_objective() {
        let mut b = Backlog::default();
        // Served at 80 % of the throughput; the replicas meet TPOT for half of what they serve.
        let tpot = |u: f64| if u > 0.5 { 0.5 } else { 1.0 };
        for t in 0..10 {
            assert_eq!(b.tick(t as f64, 4.0, 5.0, &SLO, &tpot), 4.0);
        }
        assert_eq!((b.outcome.served, b.outcome.met), (40.0, 20.0));
    }
}
