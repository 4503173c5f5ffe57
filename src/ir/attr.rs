//! Generic attribute values: the attribute dictionaries of the text format and custom ops.

use indexmap::IndexMap;

/// One attribute value. Builtin ops convert their typed fields to and from these for printing
/// and parsing; custom ops store them as is.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// A signed integer: `4`, `-1`.
    Int(i64),
    /// A float (printed in shortest round-trip form): `1e-5`, `6.0`.
    Float(f32),
    /// A boolean: `true`, `false`.
    Bool(bool),
    /// A string: `"constant"`.
    Str(String),
    /// A list of integers: `[1, 1]`.
    Ints(Vec<i64>),
    /// A list of floats: `[0.5, 1.0]`.
    Floats(Vec<f32>),
}

impl Attr {
    /// Short kind name used in error messages ("int", "float list" ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Attr::Int(_) => "int",
            Attr::Float(_) => "float",
            Attr::Bool(_) => "bool",
            Attr::Str(_) => "string",
            Attr::Ints(_) => "int list",
            Attr::Floats(_) => "float list",
        }
    }
}

/// An ordered attribute dictionary (printing keeps insertion order).
pub type AttrMap = IndexMap<String, Attr>;

/// Typed access to an attribute dictionary while building a builtin op; every accessor
/// removes what it reads so that [`AttrReader::finish`] can reject unknown keys.
pub struct AttrReader {
    op: String,
    attrs: AttrMap,
}

impl AttrReader {
    /// Wraps the attributes given to op `op`.
    pub fn new(op: &str, attrs: AttrMap) -> Self {
        AttrReader { op: op.to_string(), attrs }
    }

    fn take(&mut self, key: &str) -> Option<Attr> {
        self.attrs.shift_remove(key)
    }

    fn wrong(&self, key: &str, want: &str, got: &Attr) -> String {
        format!("op `{}`: attribute `{key}` must be {want}, got {}", self.op, got.kind())
    }

    fn missing(&self, key: &str) -> String {
        format!("op `{}`: missing attribute `{key}`", self.op)
    }

    /// A required non-negative integer.
    pub fn usize(&mut self, key: &str) -> Result<usize, String> {
        match self.take(key) {
            Some(Attr::Int(v)) if v >= 0 => Ok(v as usize),
            Some(a) => Err(self.wrong(key, "a non-negative int", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// An optional non-negative integer with a default.
    pub fn usize_or(&mut self, key: &str, default: usize) -> Result<usize, String> {
        if self.attrs.contains_key(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    /// A required signed integer.
    pub fn int(&mut self, key: &str) -> Result<i64, String> {
        match self.take(key) {
            Some(Attr::Int(v)) => Ok(v),
            Some(a) => Err(self.wrong(key, "an int", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// A required float (integers are accepted and converted).
    pub fn float(&mut self, key: &str) -> Result<f32, String> {
        match self.take(key) {
            Some(Attr::Float(v)) => Ok(v),
            Some(Attr::Int(v)) => Ok(v as f32),
            Some(a) => Err(self.wrong(key, "a float", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// An optional float with a default.
    pub fn float_or(&mut self, key: &str, default: f32) -> Result<f32, String> {
        if self.attrs.contains_key(key) {
            self.float(key)
        } else {
            Ok(default)
        }
    }

    /// A required boolean.
    pub fn bool(&mut self, key: &str) -> Result<bool, String> {
        match self.take(key) {
            Some(Attr::Bool(v)) => Ok(v),
            Some(a) => Err(self.wrong(key, "a bool", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// An optional boolean with a default.
    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, String> {
        if self.attrs.contains_key(key) {
            self.bool(key)
        } else {
            Ok(default)
        }
    }

    /// A required string.
    pub fn string(&mut self, key: &str) -> Result<String, String> {
        match self.take(key) {
            Some(Attr::Str(v)) => Ok(v),
            Some(a) => Err(self.wrong(key, "a string", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// A required list of non-negative integers (an empty `[]` is accepted).
    pub fn usizes(&mut self, key: &str) -> Result<Vec<usize>, String> {
        match self.take(key) {
            Some(Attr::Ints(v)) => v
                .iter()
                .map(|x| {
                    usize::try_from(*x)
                        .map_err(|_| format!("op `{}`: attribute `{key}` has negative entry {x}", self.op))
                })
                .collect(),
            Some(Attr::Floats(v)) if v.is_empty() => Ok(vec![]),
            Some(a) => Err(self.wrong(key, "a list of non-negative ints", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// A required list of exactly `N` non-negative integers.
    pub fn usize_array<const N: usize>(&mut self, key: &str) -> Result<[usize; N], String> {
        let v = self.usizes(key)?;
        <[usize; N]>::try_from(v.as_slice())
            .map_err(|_| format!("op `{}`: attribute `{key}` must have {N} entries, got {}", self.op, v.len()))
    }

    /// A required list of signed integers.
    pub fn ints(&mut self, key: &str) -> Result<Vec<i64>, String> {
        match self.take(key) {
            Some(Attr::Ints(v)) => Ok(v),
            Some(Attr::Floats(v)) if v.is_empty() => Ok(vec![]),
            Some(a) => Err(self.wrong(key, "a list of ints", &a)),
            None => Err(self.missing(key)),
        }
    }

    /// Rejects attributes nobody read.
    pub fn finish(self) -> Result<(), String> {
        match self.attrs.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("op `{}` has no attribute `{k}`", self.op)),
        }
    }
}
