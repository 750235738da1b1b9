//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does
//! it (upstream runs controller-runtime's, with `LeaderElectionReleaseOnCancel`): a candidate
//! takes the Lease when it is absent, released, or not renewed for a lease duration *as observed
//! on its own clock* (never trusting another node's time stamps); the leader renews every retry
//! period and gives up leading when it could not renew for the renew deadline — which is shorter
//! than the lease duration, so it has stopped before anyone else may start. Every update carries
//! the resourceVersion it read (optimistic concurrency: two candidates never both win). On
//! shutdown the leader releases at once. Writes only its Lease; knows nothing of what it guards.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use crate::runtime::Shutdown;

/// Upstream's `LeaderElectionID`: the Lease's name, so that wva and upstream never lead at once.
pub const LEASE_NAME: &str = "72dd1cf1.llm-d.ai";

/// The timing of the election (upstream's flags and defaults: 60 s, 50 s, 10 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(50),
            retry_period: Duration::from_secs(10),
        }
    }
}

impl Timing {
    /// client-go's rule: lease duration > renew deadline > retry period (with its 1.2 jitter).
    pub fn check(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "--leader-election-lease-duration ({:?}) must be longer than --leader-election-renew-deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(format!(
                "--leader-election-renew-deadline ({:?}) must be longer than 1.2 x --leader-election-retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("--leader-election-lease-duration must be at least 1s".into());
        }
        Ok(())
    }
}

/// Whether this process leads; cheap to clone.
#[derive(Clone, Debug)]
pub enum Leadership {
    /// No election (one replica): always leading, never lost.
    Always,
    /// As the elector says.
    Elected(watch::Receiver<bool>),
}

impl Leadership {
    pub fn always() -> Self {
        Self::Always
    }

    pub fn is_leading(&self) -> bool {
        match self {
            Self::Always => true,
            Self::Elected(leading) => *leading.borrow(),
        }
    }

    /// Resolves once this process leads.
    pub async fn acquired(&mut self) {
        self.until(true).await;
    }

    /// Resolves once this process no longer leads (never without an election).
    pub async fn lost(&mut self) {
        self.until(false).await;
    }

    async fn until(&mut self, wanted: bool) {
        match self {
            Self::Always if wanted => {}
            Self::Always => std::future::pending().await,
            Self::Elected(leading) => {
                // The elector outlives its subscribers; if it were gone, nothing would change.
                if leading.wait_for(|&l| l == wanted).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HolderLabel {
    identity: String,
}

/// `wva_leader_election_leading` (this process) and `wva_leader_election_holder{identity}`
/// (who holds the Lease, as this process last saw it).
#[derive(Clone, Default)]
pub struct LeaderMetrics {
    leading: Gauge,
    holder: Family<HolderLabel, Gauge>,
}

impl LeaderMetrics {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "wva_leader_election_leading",
            "1 while this process holds the leader Lease and runs the controller",
            self.leading.clone(),
        );
        registry.register(
            "wva_leader_election_holder",
            "The identity holding the leader Lease, as this process last observed it",
            self.holder.clone(),
        );
    }

    fn holder(&self, identity: Option<&str>) {
        self.holder.clear();
        if let Some(identity) = identity.filter(|i| !i.is_empty()) {
            self.holder
                .get_or_create(&HolderLabel {
                    identity: identity.to_owned(),
                })
                .set(1);
        }
    }
}

/// What a candidate does with the Lease it read (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// No Lease: create it.
    Create,
    /// Ours: renew it.
    Renew,
    /// Released, or not renewed for a lease duration as we observed it: take it over.
    TakeOver,
    /// Someone else holds it.
    Follow(String),
}

/// Decides the step for `lease` read now. `unchanged_for`: how long the Lease's holder and
/// renew time have been the same as this process has observed them (its own clock).
pub fn step(
    lease: Option<&Lease>,
    me: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Step {
    let Some(lease) = lease else {
        return Step::Create;
    };
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or("");
    if holder == me {
        return Step::Renew;
    }
    if holder.is_empty() {
        return Step::TakeOver;
    }
    // The holder's own duration when it set one, else ours.
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .filter(|&d| d > 0)
        .map_or(lease_duration, |d| Duration::from_secs(d as u64));
    if unchanged_for >= duration {
        Step::TakeOver
    } else {
        Step::Follow(holder.to_owned())
    }
}

/// The record this process last observed, and when it changed (its own clock).
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    since: Instant,
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    metrics: LeaderMetrics,
    leading: watch::Sender<bool>,
    observed: Mutex<Observed>,
}

impl Elector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        identity: String,
        timing: Timing,
        metrics: LeaderMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            api: Api::namespaced(client, namespace),
            name: LEASE_NAME.into(),
            identity,
            timing,
            metrics,
            leading: watch::channel(false).0,
            observed: Mutex::new(Observed {
                record: None,
                since: Instant::now(),
            }),
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn leadership(&self) -> Leadership {
        Leadership::Elected(self.leading.subscribe())
    }

    fn set_leading(&self, leading: bool) {
        if self.leading.send_replace(leading) != leading {
            if leading {
                tracing::info!(identity = %self.identity, lease = %self.name, "became the leader");
            } else {
                tracing::warn!(identity = %self.identity, lease = %self.name, "no longer the leader");
            }
        }
        self.metrics.leading.set(i64::from(leading));
    }

    /// Campaigns and renews until `shutdown`; never releases (see [`Elector::release`], called
    /// once what the leadership guards has stopped). Each attempt is bounded by the retry period,
    /// and leading ends at the renew deadline after the last renewal even while an attempt or the
    /// API server hangs.
    pub async fn run(&self, shutdown: Shutdown) -> Result<(), std::convert::Infallible> {
        let mut last_renew: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let attempt =
                tokio::time::timeout(self.timing.retry_period, self.try_acquire_or_renew(started));
            let outcome = tokio::select! {
                () = shutdown.requested() => return Ok(()),
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(Ok(true)) => {
                    last_renew = Some(started);
                    self.set_leading(true);
                }
                Ok(Ok(false)) => {
                    last_renew = None;
                    self.set_leading(false);
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, lease = %self.name, "cannot read or update the leader Lease");
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "the leader Lease request timed out");
                }
            }
            let next = started + self.timing.retry_period;
            loop {
                let now = Instant::now();
                let deadline = last_renew.map(|at| at + self.timing.renew_deadline);
                if deadline.is_some_and(|d| d <= now) {
                    last_renew = None;
                    self.set_leading(false);
                }
                if now >= next {
                    break;
                }
                let wake = deadline.map_or(next, |d| d.min(next));
                tokio::select! {
                    () = shutdown.requested() => return Ok(()),
                    () = tokio::time::sleep_until(wake.into()) => {}
                }
            }
        }
    }

    /// Gives the Lease up at once if this process holds it (so the next leader need not wait for
    /// it to expire). Best effort, within 2 s.
    pub async fn release(&self) {
        self.set_leading(false);
        let release = async {
            let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
                return;
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return;
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(micro_now());
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => tracing::info!(identity = %self.identity, "released the leader Lease"),
                Err(error) => tracing::warn!(%error, "cannot release the leader Lease"),
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), release).await;
    }

    async fn try_acquire_or_renew(&self, now: Instant) -> Result<bool, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        let unchanged_for = {
            let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
            let record = lease.as_ref().map(|l| {
                let spec = l.spec.as_ref();
                (
                    spec.and_then(|s| s.holder_identity.clone()),
                    spec.and_then(|s| s.renew_time.clone()),
                )
            });
            if observed.record != record {
                observed.record = record;
                observed.since = now;
            }
            now.duration_since(observed.since)
        };
        let holder = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone());
        let step = step(
            lease.as_ref(),
            &self.identity,
            unchanged_for,
            self.timing.lease_duration,
        );
        let duration = self.timing.lease_duration.as_secs().max(1) as i32;
        let result = match step {
            Step::Follow(_) => {
                self.metrics.holder(holder.as_deref());
                return Ok(false);
            }
            Step::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(duration),
                        acquire_time: Some(micro_now()),
                        renew_time: Some(micro_now()),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Step::Renew | Step::TakeOver => {
                let mut lease = lease.expect("invariant: Renew and TakeOver read a Lease");
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if step == Step::TakeOver {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(micro_now());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(duration);
                spec.renew_time = Some(micro_now());
                // The resourceVersion read above makes this a compare-and-swap.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => {
                self.metrics.holder(Some(&self.identity));
                Ok(true)
            }
            // Another candidate won the race (create or update conflict): follow.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.metrics.holder(holder.as_deref());
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// A process identity: `POD_NAME` (or the host name) and a random suffix, as client-go's
/// `hostname_uuid`, so that a restarted pod never mistakes its predecessor's Lease for its own.
pub fn identity(pod_name: Option<String>) -> String {
    let host = pod_name
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wva".into());
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    let suffix: String = if random {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        format!(
            "{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        )
    };
    format!("{host}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: duration,
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn steps() {
        let d = Duration::from_secs(60);
        assert_eq!(step(None, "me", Duration::ZERO, d), Step::Create);
        assert_eq!(
            step(Some(&lease(Some("me"), Some(60))), "me", d * 2, d),
            Step::Renew
        );
        assert_eq!(
            step(Some(&lease(None, Some(1))), "me", Duration::ZERO, d),
            Step::TakeOver,
            "released"
        );
        assert_eq!(
            step(Some(&lease(Some(""), None)), "me", Duration::ZERO, d),
            Step::TakeOver
        );
        assert_eq!(
            step(
                Some(&lease(Some("other"), Some(60))),
                "me",
                Duration::from_secs(59),
                d
            ),
            Step::Follow("other".into())
        );
        assert_eq!(
            step(
                Some(&lease(Some("other"), Some(60))),
                "me",
                Duration::from_secs(60),
                d
            ),
            Step::TakeOver,
            "not renewed for a lease duration on our clock"
        );
        assert_eq!(
            step(
                Some(&lease(Some("other"), Some(15))),
                "me",
                Duration::from_secs(16),
                d
            ),
            Step::TakeOver,
            "the holder's own duration counts"
        );
    }

    #[test]
    fn timing_is_checked_as_client_go_does() {
        assert!(Timing::default().check().is_ok());
        let bad = Timing {
            lease_duration: Duration::from_secs(10),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(
            bad.check()
                .unwrap_err()
                .contains("longer than --leader-election-renew-deadline")
        );
        let bad = Timing {
            retry_period: Duration::from_secs(45),
            ..Timing::default()
        };
        assert!(bad.check().unwrap_err().contains("1.2 x"));
    }

    #[tokio::test]
    async fn without_an_election_leadership_is_never_lost() {
        let mut always = Leadership::always();
        assert!(always.is_leading());
        always.acquired().await;
        let lost = tokio::time::timeout(Duration::from_millis(50), always.lost()).await;
        assert!(lost.is_err(), "never resolves");
        let (tx, rx) = watch::channel(true);
        let mut elected = Leadership::Elected(rx);
        tx.send_replace(false);
        elected.lost().await;
        assert!(!elected.is_leading());
    }

    #[test]
    fn identities_differ_per_process_start() {
        let a = identity(Some("wva-0".into()));
        let b = identity(Some("wva-0".into()));
        assert!(a.starts_with("wva-0_") && a != b, "{a} {b}");
    }
}
