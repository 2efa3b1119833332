use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrations = "../migrations")]
async fn the_lobby_is_rendered_on_the_server_with_every_jackpot(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    for name in ["Cekpot Mega", "Caspian Treasure", "Lucky Sevens"] {
        assert!(html.contains(name), "{name} is in the rendered page");
    }
    assert!(html.contains(r#"aria-valuenow="10.0""#), "progress bars are rendered");
    assert!(html.contains("10,000.00"), "the mega pool's value is rendered, grouped");
    assert!(html.contains(r#"data-hydrated="false""#), "not hydrated until the browser runs it");
    assert!(html.contains("/pkg/cekpot"), "the page loads the hydration bundle");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unknown_page_is_a_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/no-such-page").await;
    assert_eq!(response.status(), 404);
}
