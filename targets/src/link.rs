//! Link model: payload time = set-up latency + bytes x 8 x (1 + framing overhead) / bandwidth;
//! device energy = payload bits x energy per payload bit.

use crate::desc::check_positive;
use clio::cost::LinkModel;

/// A link description (targets/data/ble.json, wifi.json).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDesc {
    /// Link name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// The link's usual application throughput (used when no bandwidth is given).
    pub nominal_bandwidth_bps: f64,
    /// Latency before the first payload byte (connection event, round trip).
    pub setup_latency_s: f64,
    /// Framing overhead as a fraction of the payload.
    pub overhead_fraction: f64,
    /// Device energy per payload bit.
    pub energy_per_payload_bit_j: f64,
    /// Where each number comes from.
    #[serde(default)]
    pub sources: serde_json::Map<String, serde_json::Value>,
}

impl LinkDesc {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), String> {
        check_positive(&[
            ("nominal_bandwidth_bps", self.nominal_bandwidth_bps),
            ("energy_per_payload_bit_j", self.energy_per_payload_bit_j),
        ])?;
        if !(self.setup_latency_s.is_finite() && self.setup_latency_s >= 0.0) {
            return Err(format!("`setup_latency_s` must be >= 0, got {}", self.setup_latency_s));
        }
        if !(self.overhead_fraction.is_finite() && self.overhead_fraction >= 0.0) {
            return Err(format!("`overhead_fraction` must be >= 0, got {}", self.overhead_fraction));
        }
        Ok(())
    }

    fn wire_bits(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 * (1.0 + self.overhead_fraction)
    }
}

impl LinkModel for LinkDesc {
    fn name(&self) -> &str {
        &self.name
    }

    fn nominal_bandwidth_bps(&self) -> f64 {
        self.nominal_bandwidth_bps
    }

    fn transfer_time_s(&self, bytes: u64, bandwidth_bps: f64) -> f64 {
        if bytes == 0 {
            return 0.0;
        }
        self.setup_latency_s + self.wire_bits(bytes) / bandwidth_bps
    }

    fn transfer_energy_j(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 * self.energy_per_payload_bit_j
    }

    fn bytes_within(&self, seconds: f64, bandwidth_bps: f64) -> u64 {
        let room = seconds - self.setup_latency_s;
        if room <= 0.0 || bandwidth_bps <= 0.0 {
            return 0;
        }
        (room * bandwidth_bps / (8.0 * (1.0 + self.overhead_fraction))).floor() as u64
    }

    fn bandwidth_needed_bps(&self, bytes: u64, seconds: f64) -> Option<f64> {
        if bytes == 0 {
            return Some(0.0);
        }
        let room = seconds - self.setup_latency_s;
        (room > 0.0).then(|| self.wire_bits(bytes) / room)
    }
}
