//! CloudWatch Embedded Metric Format: counts of one invocation, printed as one JSON line on
//! stdout (not through the tracing formatter, which would nest it).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The counters of one invocation of one function.
#[derive(Debug)]
pub struct Metrics {
    function: &'static str,
    counts: Mutex<BTreeMap<&'static str, f64>>,
    latencies_ms: Mutex<Vec<f64>>,
}

impl Metrics {
    pub fn new(function: &'static str) -> Self {
        Metrics { function, counts: Mutex::new(BTreeMap::new()), latencies_ms: Mutex::new(Vec::new()) }
    }

    pub fn count(&self, name: &'static str) {
        *self.counts.lock().expect("metrics lock").entry(name).or_default() += 1.0;
    }

    /// Adds `value` to a count, and records the count even when `value` is 0: a function whose
    /// alarms need a data point every run (the sweep) reports its zeros too.
    pub fn add(&self, name: &'static str, value: f64) {
        *self.counts.lock().expect("metrics lock").entry(name).or_default() += value;
    }

    pub fn twilio_latency(&self, ms: f64) {
        self.latencies_ms.lock().expect("metrics lock").push(ms);
    }

    pub fn get(&self, name: &str) -> f64 {
        self.counts.lock().expect("metrics lock").get(name).copied().unwrap_or(0.0)
    }

    /// The EMF document, or `None` when nothing was counted.
    pub fn to_emf(&self, timestamp_ms: i64) -> Option<serde_json::Value> {
        let counts = self.counts.lock().expect("metrics lock").clone();
        let latencies = self.latencies_ms.lock().expect("metrics lock").clone();
        if counts.is_empty() && latencies.is_empty() {
            return None;
        }
        let mut definitions: Vec<serde_json::Value> =
            counts.keys().map(|name| serde_json::json!({"Name": name, "Unit": "Count"})).collect();
        let mut document = serde_json::json!({ "Function": self.function });
        for (name, value) in &counts {
            document[*name] = serde_json::json!(value);
        }
        if !latencies.is_empty() {
            definitions.push(serde_json::json!({"Name": "TwilioLatencyMs", "Unit": "Milliseconds"}));
            document["TwilioLatencyMs"] = serde_json::json!(latencies);
        }
        document["_aws"] = serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Missive",
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }]
        });
        Some(document)
    }

    /// Prints the EMF line on stdout.
    pub fn flush(&self) {
        if let Some(document) = self.to_emf(chrono::Utc::now().timestamp_millis()) {
            println!("{document}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_namespace_dimension_and_values() {
        let metrics = Metrics::new("send");
        assert!(metrics.to_emf(0).is_none());
        metrics.count("Sent");
        metrics.count("Sent");
        metrics.count("Failed");
        metrics.twilio_latency(12.5);
        let emf = metrics.to_emf(1000).unwrap();
        assert_eq!(emf["Function"], "send");
        assert_eq!(emf["Sent"], 2.0);
        assert_eq!(emf["TwilioLatencyMs"], serde_json::json!([12.5]));
        let directive = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Missive");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_count_added_as_zero_is_still_reported() {
        let metrics = Metrics::new("retry-sweep");
        metrics.add("Due", 0.0);
        metrics.add("Enqueued", 2.0);
        metrics.add("Enqueued", 1.0);
        let emf = metrics.to_emf(1000).expect("zeros are data");
        assert_eq!((emf["Due"].as_f64(), emf["Enqueued"].as_f64()), (Some(0.0), Some(3.0)));
        let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(names, ["Due", "Enqueued"]);
    }
}
