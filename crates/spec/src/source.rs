//! The experiment files read so far, and spans that point into them.
//!
//! In: file paths. Out: [`Sources`], an arena of file texts, and [`Span`], a
//! (file, byte range) pair that every parsed value carries so that any later
//! stage can point at the text that caused a problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// Index of a file in [`Sources`].
pub type FileId = usize;

/// A byte range in one experiment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// The byte range in it.
    pub range: SourceSpan,
}

/// A value with the span it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs a value with its span.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// One experiment file's text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as given (or as resolved from an `extends`).
    pub path: PathBuf,
    /// The file's text.
    pub text: Arc<String>,
}

/// Every experiment file read while loading one experiment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// Adds a file's text and returns its id.
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        self.files.push(SourceFile {
            path: path.to_owned(),
            text: Arc::new(text),
        });
        self.files.len() - 1
    }

    /// The file with this id.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// The file's text as a miette source, named by its path.
    pub fn named(&self, id: FileId) -> NamedSource<Arc<String>> {
        let file = &self.files[id];
        NamedSource::new(file.path.display().to_string(), Arc::clone(&file.text)).with_language("kdl")
    }
}
