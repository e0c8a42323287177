from support import PASSWORD


def test_a_user_logs_in_through_the_real_app_and_sees_the_home_page(make_app, create_user):
    create_user("alice", roles=["operator"])
    app = make_app()
    client = app.test_client()
    login_page = client.get("/login")
    assert login_page.status_code == 200
    token = (
        login_page.get_data(as_text=True)
        .split('name="csrf_token" type="hidden" value="')[1]
        .split('"')[0]
    )
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    home = client.get("/")
    assert "Welcome, Alice Tester" in home.get_data(as_text=True)
