//! Standard output, as both binaries write it: a reader that goes away
//! (`runner data inspect ... | head`) ends the process quietly instead of a
//! broken-pipe panic.

use std::io::Write;

/// Writes `args` to stdout. When the reader has gone (a closed pipe) the
/// process exits 0 at once; any other failure (a full disk under a
/// redirection) exits 1 with the reason on stderr.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("runner: cannot write the output: {error}");
        std::process::exit(1);
    }
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write`].
#[macro_export]
macro_rules! say_text {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}
