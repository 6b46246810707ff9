"""The web UI in a real browser: headless Chromium (Debian's), driven by Playwright, against a
real `kiln up`. Screenshots of the pages go to target/ui-screenshots/."""
import shutil

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from conftest import REPO, KilnUp

SHOTS = REPO / "target" / "ui-screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Debian's Chromium as root, headless, with nothing reaching out of the machine.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = "<script>document.title='owned'</script><b>bold</b>"


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    up = KilnUp(tmp_path_factory.mktemp("kiln-ui"))
    up.call("POST", "/api/v1/teams", json={"name": "lab", "description": "The lab"})
    up.call("POST", "/api/v1/teams/lab/workgroups", json={"name": "vision"})
    up.call("POST", "/api/v1/teams/lab/workgroups", json={"name": "secret"})
    wg = "/api/v1/teams/lab/workgroups/vision"
    up.call("POST", f"{wg}/models", json={"name": "iris", "description": HOSTILE})
    up.call("POST", f"{wg}/projects", json={"name": "flowers", "description": "Iris classifier"})
    # A reader of vision only.
    rita = up.call("POST", "/api/v1/users", json={"name": "rita"})
    up.call("PUT", "/api/v1/teams/lab/members/rita", json={"role": "member"})
    up.call("PUT", f"{wg}/members/rita", json={"role": "reader"})
    up.rita = rita["token"]["token"]
    yield up
    up.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def sign_in(browser, kiln, token, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(kiln.api + "/")
    expect(page).to_have_url(kiln.api + "/sign-in?next=%2F")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(kiln.api + "/")
    return context, page


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_wrong_token_is_refused_with_the_reason(kiln, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(kiln.api + "/teams/lab/workgroups/vision")
    page.get_by_label("API token").fill("kiln_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid, expired or revoked")
    shot(page, "sign-in")
    # The form keeps where the user was going.
    page.get_by_label("API token").fill(kiln.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(kiln.api + "/teams/lab/workgroups/vision")
    context.close()


def test_sign_in_shows_teams_and_a_work_groups_lists(kiln, browser):
    context, page = sign_in(browser, kiln, kiln.token)
    cookie = next(c for c in context.cookies() if c["name"] == "kiln_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "Teams and work groups" in page.get_by_role("heading", level=1).inner_text()
    lab = page.get_by_role("region", name="lab")
    expect(lab).to_contain_text("The lab")
    expect(lab.get_by_role("link", name="secret")).to_be_visible()
    shot(page, "home")

    lab.get_by_role("link", name="vision").click()
    expect(page).to_have_url(kiln.api + "/teams/lab/workgroups/vision")
    models = page.get_by_role("region", name="Models")
    expect(models.get_by_role("cell", name="iris")).to_be_visible()
    # Hostile text is text: shown as typed, run nowhere.
    expect(models).to_contain_text(HOSTILE)
    assert page.title() != "owned"
    assert page.locator("main script, main b").count() == 0
    expect(page.get_by_role("region", name="Projects")).to_contain_text("Iris classifier")
    # Every empty list says how to fill it.
    for section, hint in [("Images", "kiln image register"),
                          ("Deployments", "kiln deployment create"),
                          ("Endpoints", "kiln endpoint create")]:
        expect(page.get_by_role("region", name=section)).to_contain_text(hint)
    shot(page, "workgroup")
    # Readable at a phone's width: nothing wider than the screen but the tables' own scroll.
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    shot(page, "workgroup-phone")
    context.close()


def test_a_reader_sees_only_their_work_groups(kiln, browser):
    context, page = sign_in(browser, kiln, kiln.rita)
    lab = page.get_by_role("region", name="lab")
    expect(lab.get_by_role("link", name="vision")).to_be_visible()
    expect(lab.get_by_role("link", name="secret")).to_have_count(0)
    # As in the API: a work group one may not see does not exist.
    response = page.goto(kiln.api + "/teams/lab/workgroups/secret")
    assert response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("not found")
    response = page.goto(kiln.api + "/teams/lab/workgroups/vision")
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_contain_text("reader")
    context.close()


def test_forms_refuse_cross_site_posts_and_sign_out_ends_the_session(kiln, browser):
    context, page = sign_in(browser, kiln, kiln.token)
    session = next(c["value"] for c in context.cookies() if c["name"] == "kiln_session")
    csrf = page.locator("form.account input[name=csrf]").get_attribute("value")
    jar = {"kiln_session": session}
    # Another site's form posting here, with and without the form token: refused.
    for data in ({"csrf": csrf}, {"next": "/"}):
        forged = requests.post(kiln.api + "/sign-out", cookies=jar, data=data,
                               headers={"Origin": "http://evil.example"},
                               allow_redirects=False, timeout=30)
        assert forged.status_code == 403, forged.text
    missing = requests.post(kiln.api + "/sign-out", cookies=jar, data={"next": "/"},
                            allow_redirects=False, timeout=30)
    assert missing.status_code == 403 and "expired" in missing.text
    # The session survived those; pages carry the CSP.
    home = requests.get(kiln.api + "/", cookies=jar, allow_redirects=False, timeout=30)
    assert home.status_code == 200
    assert "default-src 'none'" in home.headers["Content-Security-Policy"]
    assert home.headers["Cache-Control"] == "no-store"
    # Signing out ends it: the old cookie no longer opens a page.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(kiln.api + "/sign-in")
    after = requests.get(kiln.api + "/", cookies=jar, allow_redirects=False, timeout=30)
    assert after.status_code == 303 and after.headers["Location"].startswith("/sign-in")
    context.close()


def test_revoking_the_token_ends_its_sessions(kiln, browser):
    created = kiln.call("POST", "/api/v1/tokens", json={"name": "web"})
    context, page = sign_in(browser, kiln, created["token"])
    kiln.call("DELETE", f"/api/v1/tokens/{created['id']}")
    page.reload()
    expect(page).to_have_url(kiln.api + "/sign-in?next=%2F")
    context.close()
