//! Analyses over the IR: shape (re)inference, parameter and MAC counts, tensor liveness over
//! a schedule, and the per-layer statistics table behind `clio stats`.

mod cost;
mod cuts;
mod liveness;
mod shapes;
mod stats;

pub use cost::{graph_cost, graph_cost_sharing, node_cost, GraphCost, NodeCost};
pub use cuts::{cut_points, find_cut, CutError, CutPoint, Granularity};
pub use liveness::{liveness, Interval, Liveness};
pub use shapes::refresh_types;
pub use stats::{layer_table, LayerRow, ModelStats};
