//! One module per subcommand. Each `run` takes its parsed flags and does the
//! whole job, returning an error for `main` to print.

pub mod admin;
pub mod chat;
pub mod delete;
pub mod devices;
pub mod history;
pub mod listen;
pub mod login;
pub mod logout;
pub mod register;
pub mod room;
pub mod rooms;
pub mod send;
pub mod serve;
pub mod sessions;
pub mod typing;
pub mod users;
pub mod whoami;
