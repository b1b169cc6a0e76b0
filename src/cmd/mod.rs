//! One module per subcommand. Each `run` takes its parsed flags and does the
//! whole job, returning an error for `main` to print.

pub mod admin;
pub mod login;
pub mod logout;
pub mod register;
pub mod serve;
pub mod sessions;
pub mod whoami;
