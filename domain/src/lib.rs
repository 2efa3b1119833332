//! Cekpot's domain: the rules of money, jackpots and play, the signing of
//! service requests, the audit chain and Telegram's initData, free of I/O.
//!
//! Nothing here talks to a database, a network or a clock, so every rule can be
//! tested exhaustively (tables and property tests) and compiled to WebAssembly
//! for the Mini App as well as for the server.

pub mod audit;
pub mod fairness;
pub mod ids;
pub mod jackpot;
pub mod money;
pub mod play;
pub mod seeds;
pub mod session;
pub mod signing;
pub mod slot;
pub mod telegram;
