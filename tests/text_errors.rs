//! Parse errors carry file:line:column and say what was expected.

use clio::text::{parse_module, ParseOptions};

fn err(src: &str) -> String {
    let opts = ParseOptions { file: "t.clio".into(), ..Default::default() };
    parse_module(src, &opts).expect_err("should not parse").to_string()
}

const HEAD: &str = "module @m {\n  graph @main(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>) {\n";

#[test]
fn errors_name_position_and_expectation() {
    let cases: &[(&str, &str)] = &[
        ("", "t.clio:1:1: expected `module`, found end of input"),
        ("module m {}", "t.clio:1:8: expected a module name `@name`, found `m`"),
        ("module @m { wat }", "t.clio:1:13: expected `weight`, `graph` or `}`, found `wat`"),
        ("module @m {\n  weight @w : tensor<2xf32> = dense<[1.0]>\n}", "t.clio:2:37: expected 2 elements (the type's element count), got 1"),
        ("module @m {\n  weight @w : tensor<2xf32> = dense<[1.0, 2.0, 3.0]>\n}", "t.clio:2:48: more than the 2 elements"),
        ("module @m {\n  weight @w : tensor<2xq8> = dense<[1, 2]>\n}", "t.clio:2:22: expected `<dims>x<dtype>`"),
        ("module @m {\n  weight @w : tensor<2xi8> = dense<[1, 300]>\n}", "t.clio:2:40: 300 does not fit in i8"),
        ("module @m {\n  weight @w : tensor<2xf32> = blob<\"00ff\">\n}", "no data were supplied"),
        ("module @m {\n  weight @w : tensor<100000x100000x100xf32> = dense<[]>\n}", "exceeds the limit"),
        (&format!("{HEAD}    %y = relu(%z) : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}}"), "t.clio:3:15: use of undefined value %z"),
        (&format!("{HEAD}    %y = frob(%x) : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}}"), "t.clio:3:10: unknown op `frob`"),
        (&format!("{HEAD}    %y = relu(%x) : tensor<1x2x4x5xf32>\n    return %y\n  }}\n}}"), "t.clio:3:10: `relu` produces tensor<1x2x4x4xf32>, but tensor<1x2x4x5xf32> is declared"),
        (&format!("{HEAD}    %y = relu(%x, %x) : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}}"), "`relu` takes 1 operands, got 2"),
        (&format!("{HEAD}    %y = clip(%x) {{min = 1.0, maxx = 2.0}} : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}}"), "op `clip` has no attribute `maxx`"),
        (&format!("{HEAD}    %y = conv2d(%x, @nope) : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}}"), "use of undeclared weight @nope"),
        (&format!("{HEAD}    %x = relu(%x) : tensor<1x2x4x4xf32>\n    return %x\n  }}\n}}"), "t.clio:3:5: redefinition of %x"),
        (&format!("{HEAD}    return %x, %x\n  }}\n}}"), "returns 2 values but its signature declares 1"),
        (&format!("{HEAD}    %y = relu(%x) : tensor<1x2x4x4xf32>\n    return %y\n  }}\n}} trailing"), "expected end of input after the module"),
        ("module @m {\n  graph @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = custom<\"a\">(%x) {s = \"unterminated} : tensor<2xf32>\n", "unterminated string"),
        ("module @m attributes {a = 1, a = 2} {}", "attribute `a` is given twice"),
    ];
    for (src, want) in cases {
        let got = err(src);
        assert!(got.contains(want), "for input\n{src}\nwanted `{want}`\ngot    `{got}`");
        assert!(got.starts_with("t.clio:"), "{got}");
        assert!(!got.contains('\n'), "one line: {got}");
    }
}

/// A one-weight module whose weight is `blob<"{digest}">`.
fn blob_module(digest: &str) -> String {
    format!(
        "module @m {{\n  weight @w : tensor<2xf32> = blob<\"{digest}\">\n  graph @g(%x: tensor<2xf32>) -> (tensor<2xf32>) {{\n    %y = add(%x, @w) : tensor<2xf32>\n    return %y\n  }}\n}}\n"
    )
}

#[test]
fn blob_digest_is_checked_against_supplied_data() {
    use clio::ir::Tensor;
    use std::collections::HashMap;
    let t = Tensor::from_f32([2], vec![1.0, 2.0]).unwrap();
    // Known answers from the Python `xxhash` package and a hand-written FNV-1a over the same
    // bytes: b"f32" + (2 as u64 LE) + the two floats LE.
    assert_eq!(t.digest(), 0xed6c_6298_0f09_0325);
    let bytes = Tensor::new([3], clio::ir::TensorData::I8(vec![1, -1, -128])).unwrap();
    assert_eq!(bytes.digest(), 0xac3f_ae5a_e5d7_c5de); // b"i8" + (3 as u64 LE) + [01, ff, 80]
                                                       // What clio writes (`xxh3:`) and what earlier versions wrote (bare FNV-1a) both load.
    for digest in ["xxh3:ed6c62980f090325", "8754d477d9a4ebd7"] {
        let src = blob_module(digest);
        let mut blobs = HashMap::new();
        blobs.insert("w".to_string(), t.clone());
        let ok = parse_module(&src, &ParseOptions { blobs: Some(&blobs), ..Default::default() }).unwrap();
        assert_eq!(ok.weight("w").unwrap().data(), &t);
        blobs.insert("w".to_string(), Tensor::from_f32([2], vec![1.0, 2.5]).unwrap());
        let e =
            parse_module(&src, &ParseOptions { blobs: Some(&blobs), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("stale or mismatched sidecar"), "{e}");
        // The error spells both digests in the text's own algorithm.
        let prefix = if digest.starts_with("xxh3:") { "has digest xxh3:" } else { "has digest " };
        assert!(e.contains(prefix) && e.contains(&format!("expects {digest}")), "{e}");
    }
    // A legacy FNV-1a digest that does not match is not rescued by XXH3, nor the other way round.
    let mut blobs = HashMap::new();
    blobs.insert("w".to_string(), t.clone());
    for wrong in ["xxh3:8754d477d9a4ebd7", "ed6c62980f090325"] {
        let e = parse_module(&blob_module(wrong), &ParseOptions { blobs: Some(&blobs), ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("stale or mismatched sidecar"), "{e}");
    }
}

#[test]
fn malformed_digests_name_what_was_expected() {
    let cases = [
        ("sha1:00ff", "unknown digest algorithm `sha1`"),
        ("xxh3:", "expected a digest of 1 to 16 hex digits"),
        ("xxh3:0123456789abcdef0", "expected a digest of 1 to 16 hex digits"),
        ("+0ff", "expected a digest of 1 to 16 hex digits"),
        ("xyz", "expected a digest of 1 to 16 hex digits"),
    ];
    for (digest, want) in cases {
        let got = err(&blob_module(digest));
        assert!(got.starts_with("t.clio:2:") && got.contains(want), "for {digest}: {got}");
    }
}
