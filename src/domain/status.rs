//! The status state machine of a MessageLog item, and Twilio's lifecycle ranks.

use std::fmt;
use std::str::FromStr;

/// A MessageLog item's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Sending,
    Retrying,
    InDoubt,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
    Rejected,
    Skipped,
    Expired,
    DryRun,
    Scheduled,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 14] = [
        Status::Sending,
        Status::Retrying,
        Status::InDoubt,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Undelivered,
        Status::Failed,
        Status::Rejected,
        Status::Skipped,
        Status::Expired,
        Status::DryRun,
        Status::Scheduled,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sending => "sending",
            Status::Retrying => "retrying",
            Status::InDoubt => "in_doubt",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Undelivered => "undelivered",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
            Status::Skipped => "skipped",
            Status::Expired => "expired",
            Status::DryRun => "dry_run",
            Status::Scheduled => "scheduled",
            Status::Cancelled => "cancelled",
        }
    }

    /// Final for `send`: nothing more will be attempted. (A status callback may still move a
    /// final item; see [`Status::accepts_callback`].)
    pub fn is_final(self) -> bool {
        !self.is_in_flight()
    }

    /// `sending`, `retrying`, `in_doubt`, `scheduled`: the item is in the `retry-due` index,
    /// and `send` will take it again.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Status::Sending | Status::Retrying | Status::InDoubt | Status::Scheduled)
    }

    /// In flight, and not merely waiting for its time: `sending`, `retrying`, `in_doubt`
    /// (what `report --watch` waits for; a `scheduled` message may wait for days).
    pub fn is_busy(self) -> bool {
        self.is_in_flight() && self != Status::Scheduled
    }

    /// Whether a status callback from Twilio may move an item in this status. `rejected`,
    /// `dry_run` and `cancelled` never reached Twilio, so no callback can name them.
    pub fn accepts_callback(self) -> bool {
        !matches!(self, Status::Rejected | Status::DryRun | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| format!("unknown status {s:?}"))
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// The rank of a Twilio message status in its lifecycle, for forward-only updates; `None` for
/// a status that never describes an outbound message's progress (`receiving`, `received`, …).
pub fn twilio_rank(twilio_status: &str) -> Option<u8> {
    match twilio_status {
        "accepted" | "scheduled" | "queued" => Some(1),
        "sending" => Some(2),
        "sent" => Some(3),
        "delivered" | "failed" | "undelivered" => Some(4),
        "read" => Some(5),
        _ => None,
    }
}

/// Our status for a Twilio status: 1–3 `sent`, then `delivered`, `read`, and `failed` or
/// `undelivered` → `undelivered` (Twilio accepted it, then could not deliver it).
pub fn status_for_twilio(twilio_status: &str) -> Option<Status> {
    match twilio_status {
        "delivered" => Some(Status::Delivered),
        "read" => Some(Status::Read),
        "failed" | "undelivered" => Some(Status::Undelivered),
        other => twilio_rank(other).map(|_| Status::Sent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert!("done".parse::<Status>().is_err());
    }

    #[test]
    fn four_statuses_are_in_flight_and_three_busy() {
        let in_flight: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_in_flight()).collect();
        assert_eq!(in_flight, [Status::Sending, Status::Retrying, Status::InDoubt, Status::Scheduled]);
        let busy: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_busy()).collect();
        assert_eq!(busy, [Status::Sending, Status::Retrying, Status::InDoubt]);
        assert!(!Status::Rejected.accepts_callback() && !Status::DryRun.accepts_callback());
        assert!(!Status::Cancelled.accepts_callback());
        assert!(Status::Failed.accepts_callback() && Status::Skipped.accepts_callback());
    }

    #[test]
    fn twilio_lifecycle_is_ranked_forward() {
        assert!(twilio_rank("queued") < twilio_rank("sent"));
        assert!(twilio_rank("sent") < twilio_rank("delivered"));
        assert!(twilio_rank("delivered") < twilio_rank("read"));
        assert_eq!(twilio_rank("undelivered"), twilio_rank("delivered"));
        assert_eq!(twilio_rank("received"), None);
        assert_eq!(status_for_twilio("accepted"), Some(Status::Sent));
        assert_eq!(status_for_twilio("failed"), Some(Status::Undelivered));
        assert_eq!(status_for_twilio("read"), Some(Status::Read));
    }
}
