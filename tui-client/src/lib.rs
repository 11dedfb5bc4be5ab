//! ferry-tui: the Ferry client library ([`client`]), the batch CLI
//! ([`cli`]) and the two-pane TUI.

pub mod cli;
pub mod client;
pub mod demo;
pub mod display;
pub mod sync;
pub mod transfer;
pub mod tui;
