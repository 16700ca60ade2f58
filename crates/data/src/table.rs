//! Metadata tables: CSV files with a header row, such as MAESTRO's
//! `maestro-v3.0.0.csv` (`canonical_composer, canonical_title, split, year,
//! midi_filename, audio_filename, duration`), joined to a source's pieces
//! by relative path. This module owns the format.
//!
//! In: the tables a dataset config names (`split table path=`, `group column
//! table=`), read once each ([`Tables::read`]). Out: for each piece, its
//! row's value in a column ([`Table::lookup`]), with the rows that name no
//! piece. A column the table lacks is an error that names the table's columns
//! (with a did-you-mean); a file named by two rows is an error; a table that
//! names none of the pieces is an error that shows a row beside a piece.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runner_plan::config::{DatasetConfig, Group, Split};
use runner_plan::show::{count, did_you_mean};
use sha2::{Digest, Sha256};

/// The tables a dataset config names, by the path written in the experiment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    tables: BTreeMap<String, Table>,
}

/// One metadata table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Its path as the experiment writes it.
    pub name: String,
    /// SHA-256 of its bytes (part of the dataset's cache key).
    pub sha256: [u8; 32],
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Each piece's value in one column, and the rows that name no piece.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Per piece: its row's value, or `None` when no row names it.
    pub values: Vec<Option<String>>,
    /// The file-column values of rows that name no piece, in table order.
    pub rows_without_file: Vec<String>,
}

/// Why a table could not be read or joined.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TableError {
    /// The file could not be read.
    #[error("cannot read the metadata table {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not CSV with a header row.
    #[error("the metadata table {} is not CSV with a header row: {problem}", path.display())]
    #[diagnostic(help("a metadata table is a CSV file whose first row names its columns, as maestro-v3.0.0.csv"))]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV reader said (with the line).
        problem: String,
    },
    /// A column the table lacks.
    #[error("the metadata table {table} has no column `{column}` (asked for by `{field}`); its columns: {columns}")]
    #[diagnostic(help("{help}"))]
    NoColumn {
        /// The table's path.
        table: String,
        /// The column asked for.
        column: String,
        /// The KDL property that asked for it.
        field: &'static str,
        /// The table's columns, comma-separated.
        columns: String,
        /// A did-you-mean, or how to name a column.
        help: String,
    },
    /// Files named by more than one row.
    #[error("the metadata table {table} names {} more than once: {list}", count(*files, "file"))]
    RepeatedFiles {
        /// The table's path.
        table: String,
        /// How many files.
        files: usize,
        /// The first few, with their lines.
        list: String,
    },
    /// A table whose file column names none of the pieces.
    #[error(
        "the metadata table {table} names none of the {pieces} pieces in `{column}` (its first row: {row:?}; the first piece: {piece:?})"
    )]
    #[diagnostic(help("`{column}` must hold each file's path relative to the source folder, with `/` separators"))]
    NoPieceNamed {
        /// The table's path.
        table: String,
        /// The file column.
        column: String,
        /// How many pieces were looked up.
        pieces: usize,
        /// The first row's file value.
        row: String,
        /// The first piece's name.
        piece: String,
    },
    /// A table asked for that [`Tables::read`] was not given.
    #[error("the metadata table {table} was not read with the dataset's config")]
    NotRead {
        /// The table's path.
        table: String,
    },
    /// Split values that are not train, validation or test.
    #[error("the metadata table {table} has {} whose `{column}` is not train, validation or test: {list}", count(*rows, "row"))]
    BadSplits {
        /// The table's path.
        table: String,
        /// The split column.
        column: String,
        /// How many rows.
        rows: usize,
        /// The first few, with their values.
        list: String,
    },
}

/// How many examples an error lists before "and N more".
const LISTED: usize = 5;

impl Tables {
    /// Reads the tables `dataset` names, each once, paths relative to `base`.
    pub fn read(dataset: &DatasetConfig, base: &Path) -> Result<Tables, TableError> {
        let mut tables = BTreeMap::new();
        for name in named_tables(dataset) {
            if !tables.contains_key(name) {
                tables.insert(name.to_owned(), Table::read(name, &base.join(name))?);
            }
        }
        Ok(Tables { tables })
    }

    /// The table written as `name`.
    pub fn get(&self, name: &str) -> Result<&Table, TableError> {
        self.tables
            .get(name)
            .ok_or_else(|| TableError::NotRead { table: name.to_owned() })
    }

    /// Every table with its hash, by name (for the cache key).
    pub fn hashes(&self) -> impl Iterator<Item = (&str, &[u8; 32])> {
        self.tables.values().map(|t| (t.name.as_str(), &t.sha256))
    }
}

/// Reads each table the `datasets` name once and checks that it has the
/// columns they ask for, without the source (for `runner check`): every
/// problem, each once.
pub fn check<'a>(datasets: impl IntoIterator<Item = &'a DatasetConfig>, base: &Path) -> Vec<TableError> {
    let mut asked: BTreeMap<&str, Vec<(&str, &'static str)>> = BTreeMap::new();
    for dataset in datasets {
        for (name, columns) in named_columns(dataset) {
            let wanted = asked.entry(name).or_default();
            for column in columns {
                if !wanted.contains(&column) {
                    wanted.push(column);
                }
            }
        }
    }
    let mut problems = Vec::new();
    for (name, columns) in asked {
        match Table::read(name, &base.join(name)) {
            Ok(table) => problems.extend(columns.iter().filter_map(|(c, field)| table.column(c, field).err())),
            Err(error) => problems.push(error),
        }
    }
    problems
}

/// The table paths a dataset config names.
fn named_tables(dataset: &DatasetConfig) -> Vec<&str> {
    named_columns(dataset).into_iter().map(|(name, _)| name).collect()
}

/// The tables a dataset config names, each with the columns it asks for
/// and the KDL properties that ask.
fn named_columns(dataset: &DatasetConfig) -> Vec<(&str, Vec<(&str, &'static str)>)> {
    let mut named = Vec::new();
    if let Split::Table {
        path,
        file_column,
        split_column,
    } = &dataset.split
    {
        named.push((
            path.as_str(),
            vec![
                (file_column.as_str(), "file-column"),
                (split_column.as_str(), "split-column"),
            ],
        ));
    }
    if let Group::Column {
        name,
        table: Some(table),
        file_column,
    } = &dataset.group
    {
        let columns = vec![(file_column.as_str(), "file-column"), (name.as_str(), "name")];
        match named.iter_mut().find(|(path, _)| *path == table.as_str()) {
            Some((_, asked)) => asked.extend(columns),
            None => named.push((table.as_str(), columns)),
        }
    }
    named
}

impl Table {
    /// Reads the CSV file at `path`, written as `name` in the experiment.
    pub fn read(name: &str, path: &Path) -> Result<Table, TableError> {
        let bytes = std::fs::read(path).map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Table::parse(name, path, &bytes)
    }

    /// A table from the bytes of a CSV file.
    fn parse(name: &str, path: &Path, bytes: &[u8]) -> Result<Table, TableError> {
        let bad = |e: csv::Error| TableError::Csv {
            path: path.to_path_buf(),
            problem: e.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
        let header: Vec<String> = reader.headers().map_err(bad)?.iter().map(str::to_owned).collect();
        if header.iter().all(String::is_empty) {
            return Err(TableError::Csv {
                path: path.to_path_buf(),
                problem: "it has no header row".to_owned(),
            });
        }
        let rows = reader
            .records()
            .map(|record| record.map(|r| r.iter().map(str::to_owned).collect()))
            .collect::<Result<Vec<Vec<String>>, csv::Error>>()
            .map_err(bad)?;
        Ok(Table {
            name: name.to_owned(),
            sha256: Sha256::digest(bytes).into(),
            header,
            rows,
        })
    }

    /// The index of `column`, asked for by the KDL property `field`.
    pub fn column(&self, column: &str, field: &'static str) -> Result<usize, TableError> {
        self.header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| TableError::NoColumn {
                table: self.name.clone(),
                column: column.to_owned(),
                field,
                columns: self.header.join(", "),
                help: did_you_mean(column, self.header.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("name one of the table's columns in `{field}`")),
            })
    }

    /// Each of `pieces`' value in `column`, joining rows to pieces by the
    /// path in `file_column` (`\` read as `/`, a leading `./` dropped).
    /// `columns` are the KDL properties that named the two columns.
    pub fn lookup(
        &self,
        file_column: &str,
        column: &str,
        columns: [&'static str; 2],
        pieces: &[String],
    ) -> Result<Lookup, TableError> {
        let file = self.column(file_column, columns[0])?;
        let value = self.column(column, columns[1])?;
        let mut by_file: BTreeMap<String, usize> = BTreeMap::new();
        let mut repeated = Vec::new();
        for (row, record) in self.rows.iter().enumerate() {
            let path = normalize(record.get(file).map_or("", String::as_str));
            if path.is_empty() {
                continue;
            }
            if let Some(first) = by_file.insert(path.clone(), row) {
                // Line 1 is the header.
                repeated.push(format!("{path:?} (lines {} and {})", first + 2, row + 2));
            }
        }
        if !repeated.is_empty() {
            return Err(TableError::RepeatedFiles {
                table: self.name.clone(),
                files: repeated.len(),
                list: listed(&repeated),
            });
        }
        let rows: Vec<Option<usize>> = pieces.iter().map(|p| by_file.get(&normalize(p)).copied()).collect();
        if !pieces.is_empty() && rows.iter().all(Option::is_none) {
            return Err(TableError::NoPieceNamed {
                table: self.name.clone(),
                column: file_column.to_owned(),
                pieces: pieces.len(),
                row: self.rows.first().and_then(|r| r.get(file)).cloned().unwrap_or_default(),
                piece: pieces[0].clone(),
            });
        }
        let mut named = vec![false; self.rows.len()];
        for row in rows.iter().flatten() {
            named[*row] = true;
        }
        Ok(Lookup {
            values: rows
                .iter()
                .map(|row| row.map(|r| self.rows[r].get(value).cloned().unwrap_or_default()))
                .collect(),
            rows_without_file: self
                .rows
                .iter()
                .zip(named)
                .filter(|(record, named)| !named && record.get(file).is_some_and(|f| !f.is_empty()))
                .map(|(record, _)| record[file].clone())
                .collect(),
        })
    }

    /// The error for split values that are not train, validation or test:
    /// `bad` holds (piece, value) pairs.
    pub fn bad_splits(&self, column: &str, bad: &[(String, String)]) -> TableError {
        let list: Vec<String> = bad.iter().map(|(piece, value)| format!("{piece}: {value:?}")).collect();
        TableError::BadSplits {
            table: self.name.clone(),
            column: column.to_owned(),
            rows: bad.len(),
            list: listed(&list),
        }
    }
}

/// A relative path as tables and sources both write it.
fn normalize(path: &str) -> String {
    let path = path.trim().replace('\\', "/");
    path.strip_prefix("./").unwrap_or(&path).to_owned()
}

/// The first few items, then how many more.
fn listed(items: &[String]) -> String {
    let shown = items[..items.len().min(LISTED)].join(", ");
    match items.len().saturating_sub(LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAESTRO: &str = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n\
        Ludwig van Beethoven,\"Sonata No. 8, Op. 13\",train,2004,2004/a.midi,2004/a.wav,600.5\n\
        Ludwig van Beethoven,\"Sonata No. 8, Op. 13\",test,2006,2006/b.midi,2006/b.wav,610.0\n\
        Frédéric Chopin,Ballade No. 1,validation,2008,2008/c.midi,2008/c.wav,540.25\n";

    fn table(text: &str) -> Result<Table, TableError> {
        Table::parse("maestro.csv", Path::new("maestro.csv"), text.as_bytes())
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    const FIELDS: [&str; 2] = ["file-column", "split-column"];

    #[test]
    fn rows_join_pieces_by_relative_path() {
        let t = table(MAESTRO).unwrap();
        let found = t
            .lookup(
                "midi_filename",
                "canonical_title",
                FIELDS,
                &names(&["2006/b.midi", "./2004\\a.midi", "extra.mid"]),
            )
            .unwrap();
        assert_eq!(
            found.values,
            vec![
                Some("Sonata No. 8, Op. 13".to_owned()),
                Some("Sonata No. 8, Op. 13".to_owned()),
                None
            ]
        );
        assert_eq!(found.rows_without_file, vec!["2008/c.midi".to_owned()]);
    }

    #[test]
    fn a_misspelt_column_is_named_with_the_closest() {
        let t = table(MAESTRO).unwrap();
        let err = t
            .lookup("midi_filenme", "split", FIELDS, &names(&["2004/a.midi"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the metadata table maestro.csv has no column `midi_filenme` (asked for by `file-column`); its columns: \
             canonical_composer, canonical_title, split, year, midi_filename, audio_filename, duration"
        );
        let TableError::NoColumn { help, .. } = err else {
            unreachable!()
        };
        assert_eq!(help, "did you mean `midi_filename`?");
    }

    #[test]
    fn a_table_that_names_no_piece_shows_one_of_each() {
        let t = table(MAESTRO).unwrap();
        let err = t
            .lookup("midi_filename", "split", FIELDS, &names(&["a.midi"]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("(its first row: \"2004/a.midi\"; the first piece: \"a.midi\")"),
            "{err}"
        );
    }

    #[test]
    fn a_file_named_twice_is_an_error_with_its_lines() {
        let t = table("midi_filename,split\na.mid,train\nb.mid,test\na.mid,test\n").unwrap();
        let err = t
            .lookup("midi_filename", "split", FIELDS, &names(&["a.mid"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the metadata table maestro.csv names 1 file more than once: \"a.mid\" (lines 2 and 4)"
        );
    }

    #[test]
    fn ragged_rows_and_empty_files_are_not_tables() {
        let err = table("midi_filename,split\na.mid,train,extra\n").unwrap_err();
        assert!(matches!(err, TableError::Csv { .. }), "{err}");
        assert!(err.to_string().contains("line: 2"), "{err}");
        assert!(matches!(table("").unwrap_err(), TableError::Csv { .. }));
    }

    #[test]
    fn long_lists_are_cut() {
        let items: Vec<String> = (0..8).map(|i| i.to_string()).collect();
        assert_eq!(listed(&items), "0, 1, 2, 3, 4 and 3 more");
    }
}
