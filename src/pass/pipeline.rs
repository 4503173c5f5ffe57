//! The textual pipeline syntax, after MLIR: passes separated by commas, each with optional
//! options in braces: `fuse-bn,canonicalize{max-iters=8},quantize{scheme=int8,calib="a,b.npy"}`.
//! Values are bare words (`[A-Za-z0-9_.:/+-]`) or double-quoted strings. Printing gives the
//! canonical spelling (no spaces, options in the order written), and parse(print(p)) == p.

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::ParseError;
use crate::text::lexer::Cursor;
use indexmap::IndexMap;
use std::fmt;

/// One pass in a pipeline with its options as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineEntry {
    /// Pass id.
    pub name: String,
    /// Options in the order written.
    pub options: IndexMap<String, String>,
}

/// A parsed pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Pipeline {
    /// The passes in order.
    pub entries: Vec<PipelineEntry>,
}

fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '+' | '-')
}

impl Pipeline {
    /// Parses pipeline text. An empty string is the empty pipeline.
    pub fn parse(text: &str) -> Result<Pipeline, ParseError> {
        let mut c = Cursor::new("<pipeline>", text);
        let mut entries = vec![];
        if c.at_end() {
            return Ok(Pipeline { entries });
        }
        loop {
            let name = c.kebab_ident("a pass name")?.to_string();
            let mut options = IndexMap::new();
            if c.eat('{') && !c.eat('}') {
                {
                    loop {
                        let pos = c.pos();
                        let key = c.kebab_ident("an option name")?.to_string();
                        c.expect('=')?;
                        c.skip_trivia();
                        let value = if c.peek_char() == Some('"') {
                            c.string_literal()?
                        } else {
                            let v = c.take_while(is_value_char);
                            if v.is_empty() {
                                return Err(c.expected(&format!("a value for option `{key}`")));
                            }
                            v.to_string()
                        };
                        if options.insert(key.clone(), value).is_some() {
                            return Err(c.error_at(pos, format!("option `{key}` of pass `{name}` is given twice")));
                        }
                        if c.eat('}') {
                            break;
                        }
                        if !c.eat(',') {
                            return Err(c.expected("`,` or `}`"));
                        }
                    }
                }
            }
            entries.push(PipelineEntry { name, options });
            if c.at_end() {
                break;
            }
            if !c.eat(',') {
                return Err(c.expected("`,` between passes"));
            }
        }
        Ok(Pipeline { entries })
    }
}

impl fmt::Display for PipelineEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.options.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.options.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                // `//` would start a comment where the parser expects a value: quote it.
                if !v.is_empty() && v.chars().all(is_value_char) && !v.contains("//") {
                    write!(f, "{k}={v}")?;
                } else {
                    write!(f, "{k}={}", crate::text::printer::quoted(v))?;
                }
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
