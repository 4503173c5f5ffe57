//! A character cursor with line:column tracking, shared by the IR parser and the pipeline
//! parser. Whitespace and `//` comments are skipped between tokens.

// Decodes user text: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::is_name_char;
use crate::error::{ParseError, Pos};

/// A number as written: integer or float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f32),
}

pub(crate) struct Cursor<'a> {
    file: String,
    src: &'a str,
    /// Byte offset.
    at: usize,
    pos: Pos,
}

impl<'a> Cursor<'a> {
    pub fn new(file: &str, src: &'a str) -> Self {
        Cursor { file: file.to_string(), src, at: 0, pos: Pos { line: 1, col: 1 } }
    }

    /// Position of the next token (trivia skipped).
    pub fn pos(&mut self) -> Pos {
        self.skip_trivia();
        self.pos
    }

    pub fn error_at(&self, pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError { file: self.file.clone(), pos, message: message.into() }
    }

    /// "expected X, found Y" at the current token.
    pub fn expected(&mut self, what: &str) -> ParseError {
        self.skip_trivia();
        let found = self.describe_here();
        self.error_at(self.pos, format!("expected {what}, found {found}"))
    }

    fn describe_here(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of input".to_string(),
            Some(c) if is_name_char(c) => {
                let word: String = rest.chars().take_while(|c| is_name_char(*c)).take(24).collect();
                format!("`{word}`")
            }
            Some(c) => format!("`{c}`"),
        }
    }

    /// The unread text. `at` only ever advances by whole characters, so it is a char boundary
    /// within `src`; the empty fallback is never taken.
    fn rest(&self) -> &'a str {
        self.src.get(self.at..).unwrap_or_default()
    }

    pub fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    /// Skips whitespace and `//` comments.
    pub fn skip_trivia(&mut self) {
        loop {
            match self.peek_char() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.rest().starts_with("//") => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_trivia();
        self.at >= self.src.len()
    }

    /// Next non-trivia char without consuming it.
    pub fn peek(&mut self) -> Option<char> {
        self.skip_trivia();
        self.peek_char()
    }

    /// Consumes `c` if it is next.
    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Requires `c` next.
    pub fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{c}`")))
        }
    }

    /// Consumes the punctuation string `s` (e.g. `->`) if next.
    pub fn eat_str(&mut self, s: &str) -> bool {
        self.skip_trivia();
        if self.rest().starts_with(s) {
            for _ in s.chars() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Requires the punctuation string `s`.
    pub fn expect_str(&mut self, s: &str) -> Result<(), ParseError> {
        if self.eat_str(s) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{s}`")))
        }
    }

    /// Peeks at the next identifier-like word without consuming it.
    pub fn peek_word(&mut self) -> &'a str {
        self.skip_trivia();
        let rest = self.rest();
        let len: usize =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').map(|c| c.len_utf8()).sum();
        prefix(rest, len)
    }

    /// Consumes keyword `kw` if it is the next word.
    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_word() == kw {
            for _ in kw.chars() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Requires keyword `kw`.
    pub fn expect_keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{kw}`")))
        }
    }

    /// An identifier: `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn ident(&mut self, what: &str) -> Result<&'a str, ParseError> {
        let w = self.peek_word();
        if w.is_empty() || w.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.expected(what));
        }
        for _ in w.chars() {
            self.bump();
        }
        Ok(w)
    }

    /// A kebab-case identifier (`fuse-bn`, `max-iters`), as used by pipelines.
    pub fn kebab_ident(&mut self, what: &str) -> Result<&'a str, ParseError> {
        self.skip_trivia();
        let rest = self.rest();
        let len: usize = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .map(|c| c.len_utf8())
            .sum();
        if len == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.expected(what));
        }
        let word = prefix(rest, len);
        for _ in word.chars() {
            self.bump();
        }
        Ok(word)
    }

    /// A name after a sigil: bare (`conv1.weight`) or quoted (`"onnx::Conv_3"`).
    pub fn name_after_sigil(&mut self, sigil: char, what: &str) -> Result<String, ParseError> {
        self.skip_trivia();
        if self.peek_char() != Some(sigil) {
            return Err(self.expected(what));
        }
        self.bump();
        if self.peek_char() == Some('"') {
            return self.string_literal();
        }
        let rest = self.rest();
        let len: usize = rest.chars().take_while(|c| is_name_char(*c)).map(|c| c.len_utf8()).sum();
        if len == 0 {
            return Err(self.expected(&format!("a name after `{sigil}`")));
        }
        let name = prefix(rest, len).to_string();
        for _ in name.chars() {
            self.bump();
        }
        Ok(name)
    }

    /// A double-quoted string with `\" \\ \n \t \u{..}` escapes.
    pub fn string_literal(&mut self) -> Result<String, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        if self.peek_char() != Some('"') {
            return Err(self.expected("a string"));
        }
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error_at(start, "unterminated string")),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let esc_pos = self.pos;
                    match self.bump() {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('u') => {
                            if self.bump() != Some('{') {
                                return Err(self.error_at(esc_pos, "expected `{` after \\u"));
                            }
                            let mut hex = String::new();
                            loop {
                                match self.bump() {
                                    Some('}') => break,
                                    Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                                    _ => return Err(self.error_at(esc_pos, "malformed \\u{...} escape")),
                                }
                            }
                            let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            out.push(ch.ok_or_else(|| self.error_at(esc_pos, "\\u{...} is not a character"))?);
                        }
                        _ => return Err(self.error_at(esc_pos, "unknown escape (expected \\\" \\\\ \\n \\t \\u{..})")),
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// An integer or float literal (`-3`, `0.5`, `1e-5`, `inf`, `-inf`, `NaN`).
    pub fn number(&mut self, what: &str) -> Result<Number, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let rest = self.rest();
        for (word, v) in [("-inf", f32::NEG_INFINITY), ("inf", f32::INFINITY), ("NaN", f32::NAN), ("nan", f32::NAN)] {
            let after = rest.strip_prefix(word);
            if after.is_some_and(|a| !a.starts_with(|c: char| c.is_ascii_alphanumeric())) {
                for _ in word.chars() {
                    self.bump();
                }
                return Ok(Number::Float(v));
            }
        }
        let bytes = rest.as_bytes();
        let at = |i: usize| bytes.get(i).copied();
        let digit = |i: usize| at(i).is_some_and(|b| b.is_ascii_digit());
        let mut len = 0;
        if matches!(at(0), Some(b'-') | Some(b'+')) {
            len += 1;
        }
        let digits_start = len;
        while digit(len) {
            len += 1;
        }
        if len == digits_start {
            return Err(self.expected(what));
        }
        let mut is_float = false;
        if at(len) == Some(b'.') && digit(len + 1) {
            is_float = true;
            len += 1;
            while digit(len) {
                len += 1;
            }
        }
        if matches!(at(len), Some(b'e') | Some(b'E')) {
            let mut k = len + 1;
            if matches!(at(k), Some(b'-') | Some(b'+')) {
                k += 1;
            }
            if digit(k) {
                is_float = true;
                len = k;
                while digit(len) {
                    len += 1;
                }
            }
        }
        // Only ASCII bytes were counted, so `len` is a char boundary.
        let text = prefix(rest, len);
        for _ in 0..len {
            self.bump();
        }
        if is_float {
            text.parse::<f32>()
                .map(Number::Float)
                .map_err(|_| self.error_at(start, format!("malformed float `{text}`")))
        } else {
            text.parse::<i64>()
                .map(Number::Int)
                .map_err(|_| self.error_at(start, format!("integer `{text}` does not fit in 64 bits")))
        }
    }

    /// A non-negative integer that fits `usize`.
    pub fn usize(&mut self, what: &str) -> Result<usize, ParseError> {
        let pos = self.pos();
        match self.number(what)? {
            Number::Int(v) if v >= 0 => Ok(v as usize),
            _ => Err(self.error_at(pos, format!("expected {what} (a non-negative integer)"))),
        }
    }

    /// Raw access for context-dependent tokens (the dims of `tensor<1x3xf32>`): consumes chars
    /// while `pred` holds, without skipping trivia.
    pub fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len: usize = rest.chars().take_while(|c| pred(*c)).map(|c| c.len_utf8()).sum();
        let taken = prefix(rest, len);
        for _ in taken.chars() {
            self.bump();
        }
        taken
    }
}

/// The first `len` bytes of `s`. Callers pass a length summed from whole characters of `s`, so
/// the slice exists; if it did not, the empty string is returned (the caller then reports an
/// "expected ..." error) rather than panicking.
fn prefix(s: &str, len: usize) -> &str {
    s.get(..len).unwrap_or_default()
}
