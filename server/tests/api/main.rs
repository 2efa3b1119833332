//! Integration tests: the real server on a free port, talking to real
//! PostgreSQL (a fresh database per test) and real Redis.

mod admin;
mod audit;
mod auth;
mod engine_load;
mod errors;
mod health;
mod helpers;
mod instances;
mod jackpots;
mod pages;
mod players;
mod security;
mod service;
mod shutdown;
mod signing;
