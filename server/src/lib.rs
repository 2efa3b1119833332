//! Cekpot's server: the JSON API, the server-rendered Telegram Mini App, and
//! the storage behind the jackpots. `main.rs` is a thin command line over
//! [`startup::Application`].

pub mod audit;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod engine;
pub mod game;
pub mod http;
pub mod metrics;
pub mod nonces;
pub mod rates;
pub mod recent;
pub mod reconciliation;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod volumes;
