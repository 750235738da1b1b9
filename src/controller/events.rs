//! Kubernetes Events on VAs and ConfigMaps: one Normal Event per applied scaling step (its note
//! the decision's reason), and Warning Events for stuck pods, Prometheus failures, invalid
//! configuration and HPA conflicts — those at most once per [`WARNING_EVERY`] per object,
//! reason and subject, so that a condition that lasts does not write an Event every cycle.
//! Publishing failures are logged, never fatal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The shortest time between two Warning Events of the same object, reason and subject.
pub const WARNING_EVERY: Duration = Duration::from_secs(300);

/// The reporting controller named on every Event.
pub const REPORTER: &str = "wva";

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

/// The event sink of the controller.
pub struct Events {
    recorder: Recorder,
    throttle: Mutex<Throttle>,
}

impl Events {
    /// `instance` distinguishes replicas (the pod name), when known.
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        Self {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: REPORTER.into(),
                    instance,
                },
            ),
            throttle: Mutex::new(Throttle::new(WARNING_EVERY)),
        }
    }

    /// A Normal Event (not throttled: one per applied step).
    pub async fn normal(&self, regarding: &ObjectReference, reason: &str, note: String) {
        self.publish(regarding, EventType::Normal, reason, note)
            .await;
    }

    /// A Warning Event, unless one with the same object, reason and `subject` (a pod name, a
    /// ConfigMap key) went out within [`WARNING_EVERY`].
    pub async fn warning(
        &self,
        regarding: &ObjectReference,
        reason: &str,
        subject: &str,
        note: String,
    ) {
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
            self.publish(regarding, EventType::Warning, reason, note)
                .await;
        }
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(bounded(note)),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason, object = ?regarding.name, "cannot publish an Event");
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
