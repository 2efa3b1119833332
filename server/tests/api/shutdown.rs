//! Graceful shutdown: in-flight requests finish, new ones are refused, and the
//! real binary exits cleanly on SIGTERM.

use std::process::Command;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use server::startup::{serve, Drain};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::helpers::{eventually, free_port, start_server_binary, wait_until_serving};

async fn slow_server(
    handler_ms: u64,
    grace: Duration,
) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<Drain>>) {
    let router = Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(handler_ms)).await;
            "finished"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
        grace,
        Duration::from_secs(10),
    ));
    (address, stop, server)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_and_refuses_new_ones() {
    let (address, stop, server) = slow_server(700, Duration::from_secs(10)).await;
    let in_flight = tokio::spawn(reqwest::get(format!("{address}/slow")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();

    let response = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    assert_eq!(server.await.unwrap().unwrap(), Drain::Complete);
    assert!(reqwest::get(format!("{address}/slow")).await.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlast_the_grace_period() {
    let (address, stop, server) = slow_server(30_000, Duration::from_millis(300)).await;
    let in_flight = tokio::spawn(reqwest::get(format!("{address}/slow")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap().unwrap(), Drain::GraceExpired);
    in_flight.abort();
}

#[sqlx::test(migrations = "../migrations")]
async fn the_server_binary_exits_cleanly_on_sigterm(pool: PgPool) {
    let port = free_port();
    let mut child = start_server_binary(&pool, port);
    wait_until_serving(port).await;

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exited = eventually(10, || {
        let status = child.try_wait().unwrap();
        async move { status.is_some() }
    })
    .await;
    assert!(exited, "the binary stops within the grace period");
    assert!(child.wait().unwrap().success(), "and exits with status 0");
}
