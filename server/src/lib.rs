//! ferry-server: the library behind `ferryd`. [`server::run`] serves a
//! listener until a shutdown future completes; tests and `ferry demo` call
//! it directly.

pub mod accounts;
pub mod admin;
pub mod attrs;
pub mod auth;
pub mod budget;
pub mod bulk;
pub mod config;
pub mod conn;
pub mod copy;
pub mod files;
pub mod find;
pub mod hashes;
pub mod jail;
pub mod ledger;
pub mod link;
pub mod logfmt;
pub mod niced;
pub mod objects;
pub mod ops;
pub mod outbox;
pub mod penalty;
pub mod places;
pub mod proxy;
pub mod read;
pub mod readbuf;
pub mod revoke;
pub mod secrets;
pub mod server;
pub mod startup;
pub mod store;
pub mod threads;
pub mod tls;
pub use ferry_proto::size;
pub mod transfer;
pub mod users;
pub mod walk;

pub use config::Config;
pub use server::run;
