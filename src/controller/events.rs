//! Kubernetes Events on VAs and ConfigMaps: one Normal Event per applied scaling step (its note
//! the decision's reason), and Warning Events for stuck pods, Prometheus failures, invalid
//! configuration and HPA conflicts — those at most once per [`WARNING_EVERY`] per object,
//! reason and subject, so that a condition that lasts does not write an Event every cycle.
//! Recording never waits on the API server: an Event goes into a bounded queue that a
//! [`Publisher`] task drains (as client-go's broadcaster does), so a cycle's writes are its
//! `/scale` and status patches only. A full queue drops the Event and counts it; publishing
//! failures are logged, never fatal. Must not decide anything: it only reports.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::runtime::Shutdown;

/// The shortest time between two Warning Events of the same object, reason and subject.
pub const WARNING_EVERY: Duration = Duration::from_secs(300);

/// The reporting controller named on every Event.
pub const REPORTER: &str = "wva";

/// Events waiting to be published; beyond this they are dropped (and counted).
pub const QUEUE: usize = 1024;

/// On shutdown, how long the publisher may take to send what is still queued.
pub const FLUSH: Duration = Duration::from_secs(2);

/// Admits a key at most once per period (pure; the caller passes the clock).
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: HashMap<String, Instant>,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: HashMap::new(),
        }
    }

    /// True the first time `key` is seen and once `every` has passed since it was last admitted.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        let every = self.every;
        // Forget keys that would be admitted anyway: the map stays as small as what is current.
        self.last.retain(|_, at| now.duration_since(*at) < every);
        if self.last.contains_key(key) {
            return false;
        }
        self.last.insert(key.to_owned(), now);
        true
    }
}

/// One Event on its way to the API server.
struct Queued {
    regarding: ObjectReference,
    event: Event,
}

/// The event sink of the controller: records without waiting.
pub struct Events {
    queue: mpsc::Sender<Queued>,
    throttle: Mutex<Throttle>,
    dropped: Counter,
}

/// The task that publishes queued Events, one at a time, in the order they were recorded.
pub struct Publisher {
    recorder: Recorder,
    queue: mpsc::Receiver<Queued>,
}

impl Events {
    /// The sink and its publisher (run the publisher as a runtime component). `instance`
    /// distinguishes replicas (the pod name), when known.
    pub fn new(client: kube::Client, instance: Option<String>) -> (Self, Publisher) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: REPORTER.into(),
                instance,
            },
        );
        (
            Self {
                queue: sender,
                throttle: Mutex::new(Throttle::new(WARNING_EVERY)),
                dropped: Counter::default(),
            },
            Publisher {
                recorder,
                queue: receiver,
            },
        )
    }

    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "wva_events_dropped",
            "Kubernetes Events dropped because the publishing queue was full",
            self.dropped.clone(),
        );
    }

    /// A Normal Event (not throttled: one per applied step).
    pub fn normal(&self, regarding: &ObjectReference, reason: &str, note: String) {
        self.record(regarding, EventType::Normal, reason, note);
    }

    /// A Warning Event, unless one with the same object, reason and `subject` (a pod name, a
    /// ConfigMap key) went out within [`WARNING_EVERY`].
    pub fn warning(&self, regarding: &ObjectReference, reason: &str, subject: &str, note: String) {
        let key = format!(
            "{}/{}/{}/{reason}/{subject}",
            regarding.kind.as_deref().unwrap_or_default(),
            regarding.namespace.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default()
        );
        let admitted = self
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&key, Instant::now());
        if admitted {
            self.record(regarding, EventType::Warning, reason, note);
        }
    }

    fn record(&self, regarding: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let queued = Queued {
            regarding: regarding.clone(),
            event: Event {
                type_,
                reason: reason.into(),
                note: Some(bounded(note)),
                action: reason.into(),
                secondary: None,
            },
        };
        if self.queue.try_send(queued).is_err() {
            self.dropped.inc();
            tracing::warn!(
                reason,
                object = ?regarding.name,
                "Event dropped: {QUEUE} are waiting to be published already"
            );
        }
    }
}

impl Publisher {
    /// Publishes until shutdown, then sends what is still queued for at most [`FLUSH`].
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), Infallible> {
        loop {
            tokio::select! {
                () = shutdown.requested() => break,
                next = self.queue.recv() => match next {
                    Some(queued) => self.publish(queued).await,
                    None => return Ok(()),
                },
            }
        }
        let flush = async {
            while let Ok(queued) = self.queue.try_recv() {
                self.publish(queued).await;
            }
        };
        let _ = tokio::time::timeout(FLUSH, flush).await;
        Ok(())
    }

    async fn publish(&self, queued: Queued) {
        let Queued { regarding, event } = queued;
        if let Err(error) = self.recorder.publish(&event, &regarding).await {
            tracing::warn!(%error, reason = %event.reason, object = ?regarding.name, "cannot publish an Event");
        }
    }
}

/// Event notes are at most 1 kB.
fn bounded(mut note: String) -> String {
    const MAX: usize = 1024;
    if note.len() > MAX {
        let mut end = MAX - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_once_per_period() {
        let mut throttle = Throttle::new(Duration::from_secs(300));
        let t0 = Instant::now();
        assert!(throttle.admit("va/StuckPod/p1", t0));
        assert!(!throttle.admit("va/StuckPod/p1", t0 + Duration::from_secs(299)));
        assert!(
            throttle.admit("va/StuckPod/p2", t0 + Duration::from_secs(1)),
            "another subject"
        );
        assert!(throttle.admit("va/StuckPod/p1", t0 + Duration::from_secs(300)));
    }

    #[test]
    fn long_notes_are_cut_at_a_character_boundary() {
        let note = bounded("é".repeat(1000));
        assert!(
            note.len() <= 1024 && note.ends_with("..."),
            "{}",
            note.len()
        );
        assert_eq!(bounded("short".into()), "short");
    }
}
