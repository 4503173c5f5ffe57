//! Writing a pass outside clio and running it in a pipeline next to built-in passes.
//!
//! The pass `merge-relus` rewrites `relu(relu(x))` to `relu(x)`: it redirects the users of the
//! outer relu to the inner one and leaves the dead outer node for the built-in `dce`.
//!
//! Run it: `cargo run --example custom_pass`.

use clio::ir::Op;
use clio::pass::{Pass, PassContext, PassError, PassInfo, PassManager, StatInfo};
use clio::text::{parse_module, print_module, PrintOptions};
use clio::{Module, Value};

/// The declaration: id, summary, options (none) and statistics.
static MERGE_RELUS: PassInfo = PassInfo {
    name: "merge-relus",
    summary: "Rewrite relu(relu(x)) to relu(x)",
    options: &[],
    statistics: &[StatInfo { name: "merged", help: "outer relus made redundant" }],
};

struct MergeRelus;

impl Pass for MergeRelus {
    fn info(&self) -> &'static PassInfo {
        &MERGE_RELUS
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        for g in m.graphs_mut() {
            let order = g.topo_order().map_err(|c| PassError::failed("merge-relus", format!("cycle at {}", c.0)))?;
            for id in order {
                if !matches!(g.node(id).op, Op::Relu) {
                    continue;
                }
                let Some(inner) = g.operand(id, 0) else { continue };
                if matches!(g.node(inner.node).op, Op::Relu) {
                    g.replace_all_uses(Value::of(id), inner);
                    cx.stat("merged", 1);
                }
            }
        }
        Ok(())
    }
}

const INPUT: &str = r#"module @demo {
  graph @main(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>) {
    %a = relu(%x) : tensor<1x4xf32>
    %b = relu(%a) : tensor<1x4xf32>
    %c = sigmoid(%b) : tensor<1x4xf32>
    return %c
  }
}
"#;

/// Parses the demo module, runs `merge-relus,dce` and returns the printed result and the
/// number of merged relus.
fn run_demo() -> Result<(String, i64), Box<dyn std::error::Error>> {
    let mut registry = clio_passes::registry();
    registry.register(&MERGE_RELUS, |_| Ok(Box::new(MergeRelus)));
    let mut pm = PassManager::from_pipeline(&registry, "merge-relus,dce")?;
    let mut m = parse_module(INPUT, &Default::default())?;
    let report = pm.run(&mut m)?;
    eprint!("{}", report.timing_table());
    Ok((print_module(&m, &PrintOptions::default()), report.passes[0].stats["merged"]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (text, _) = run_demo()?;
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn custom_pass_runs_with_builtin_dce() {
        let (text, merged) = super::run_demo().unwrap();
        assert_eq!(merged, 1);
        assert!(!text.contains("%b = relu"), "dce removed the redundant relu:\n{text}");
        assert!(text.contains("%c = sigmoid(%a)"), "{text}");
    }
}
