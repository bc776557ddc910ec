"""The console as a person uses it, in a real headless Chromium against a real platform:
log in, upload a zip and watch it run, call it from the generated form (JSON and an image
from the file picker), stop / start, update, split 90/10, delete. And what must never
happen: data before login, a model's output run as HTML, a request to another origin,
a JavaScript error."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH_HEADERS, EXAMPLES, RunningPlatform
from tests.console.browser import Browser
from tests.console.conftest import zip_of
from tests.e2e.packages import iris_variant, predictor
from tests.rollout.load import wait_until

PNG = EXAMPLES / "file-contract-color" / "sample.png"

IMAGE_SIZE = '''
class Predictor:
    def setup(self):
        pass

    def predict(self, image, caption=""):
        return {"bytes": len(image), "png": image[:8] == b"\\x89PNG\\r\\n\\x1a\\n",
                "caption": caption}
'''

ECHO_LOUD = '''
class Predictor:
    def setup(self):
        pass

    def predict(self, text):
        print(f"echoer saw {text}", flush=True)
        return text.upper()
'''

HOSTILE = '''
class Predictor:
    def setup(self):
        pass

    def predict(self, text):
        return "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>" + text
'''


def api(platform: RunningPlatform, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(method, platform.url + path, headers=AUTH_HEADERS, timeout=60, **kw)


def deploy(platform: RunningPlatform, src: Path, tmp: Path, name: str) -> None:
    """A service the test only needs to exist (made over REST, not through the page)."""
    with zip_of(src, tmp / f"{name}.zip").open("rb") as f:
        r = api(platform, "POST", "/api/v1/services", files={"package": f},
                data={"name": name})
    assert r.status_code == 201, r.text
    wait_until(lambda: api(platform, "GET", f"/api/v1/services/{name}").json()["phase"]
               == "running", 240, f"{name} to run")


def status_in_list(b: Browser, name: str) -> str:
    return b.row(name).find_element("css selector", '[data-testid="service-status"]').text


def test_without_a_token_only_the_login_page_shows(browser: Browser,
                                                    platform: RunningPlatform) -> None:
    page = httpx.get(platform.url + "/console", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp, csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert httpx.get(platform.url + "/console/assets/../server.py",
                     timeout=30).status_code == 404
    assert httpx.get(platform.url + "/console/assets/nothing.js", timeout=30).status_code == 404

    browser.open()
    browser.driver.execute_script("sessionStorage.clear()")
    browser.open()
    browser.find("login")
    assert browser.find("token-input").is_displayed()
    assert not browser.all("service-list") and not browser.all("service-row")
    assert browser.driver.find_element("id", "top").get_attribute("hidden") is not None
    # a wrong token is refused with the reason, and still nothing else shows
    browser.type("token-input", "mp_wrong.wrong")
    browser.click("login-submit")
    browser.until(lambda: "Not accepted" in browser.text("login-status"), 30,
                  "the refusal")
    assert not browser.all("service-list")
    assert browser.driver.execute_script(
        "return sessionStorage.getItem('modelport.token')") is None
    browser.screenshot("login")
    assert browser.javascript_errors() == []


def test_upload_call_stop_start_update_split_delete(console: Browser, platform: RunningPlatform,
                                                   tmp_path: Path) -> None:
    b = console
    # create: name + zip from the file picker, upload progress, build log, running
    b.click("create-open")
    b.type("create-name", "iris")
    b.find("create-file").send_keys(str(zip_of(EXAMPLES / "predictor-iris",
                                               tmp_path / "iris.zip")))
    b.click("create-submit")
    b.until(lambda: "running" in b.text("create-status"), 300, "iris to run")
    assert b.find("create-progress").get_attribute("value") == "1"
    assert b.find("build-log").text.strip(), "the build log is shown"
    b.screenshot("create")
    b.click("create-done")

    # the service page: URL, call examples, and the form generated from the input schema
    b.find("service-url")
    assert "/v1/services/iris/infer" in b.text("service-url")
    assert "curl" in b.text("call-example")
    features = b.find("input-features")
    assert json.loads(features.get_attribute("value")) == [5.1, 3.5, 1.4, 0.2]
    b.click("predict-submit")
    b.until(lambda: '"label"' in b.text("predict-output"), 60, "the answer")
    assert json.loads(b.text("predict-output"))["label"] == "setosa"
    assert "version 1" in b.text("predict-meta")
    features.clear()
    features.send_keys("[6.7, 3.0, 5.2, 2.3]")
    b.click("predict-submit")
    b.until(lambda: "virginica" in b.text("predict-output"), 60, "the second answer")

    # charts: the calls just made show up in the request and latency series
    b.find("metrics-chart")
    assert b.all("chart-errors")
    b.until(lambda: float(b.find("chart-rps").get_attribute("data-max")) > 0, 30,
            "the calls on the RPS chart")
    assert float(b.find("chart-latency").get_attribute("data-max")) > 0
    assert float(b.find("chart-errors").get_attribute("data-max")) == 0
    b.until(lambda: "ReplicaStarting" in b.text("events") and "ServiceCreated" in b.text("events"),
            30, "events")
    b.screenshot("service")
    features.clear()
    features.send_keys("[1, 2,")
    b.click("predict-submit")
    b.until(lambda: "not valid JSON" in b.text("predict-error"), 30, "the JSON error")
    features.clear()
    features.send_keys("[5.1, 3.5, 1.4, 0.2]")

    # stop: REST answers 503 service.stopped; start: it answers again
    b.click("action-stop")
    b.until(lambda: b.text("service-status") == "stopped", 120, "stopped")
    r = httpx.post(platform.url + "/v1/services/iris/infer",
                   json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=60)
    assert r.status_code == 503 and r.json()["error"]["code"] == "service.stopped", r.text
    b.click("action-start")
    b.until(lambda: b.text("service-status") == "running", 240, "running again")
    wait_until(lambda: httpx.post(platform.url + "/v1/services/iris/infer",
                                  json={"features": [5.1, 3.5, 1.4, 0.2]},
                                  timeout=60).status_code == 200, 120, "REST to answer")

    # update from a new zip: version 2 rolls out, answers with its own labels
    v2 = zip_of(iris_variant(tmp_path, ["SETOSA", "VERSICOLOR", "VIRGINICA"]),
                tmp_path / "iris-v2.zip")
    b.find("update-file").send_keys(str(v2))
    b.click("update-submit")
    b.until(lambda: "Version 2" in b.text("update-result"), 60, "the update to start")
    b.until(lambda: any(r.get_attribute("data-version") == "2" for r in b.all("version-row")),
            60, "version 2 listed")
    wait_until(lambda: api(platform, "GET", "/api/v1/services/iris").json()["serving_version"]
               == 2, 300, "version 2 to serve")
    b.click("predict-submit")
    b.until(lambda: "SETOSA" in b.text("predict-output"), 60, "v2's answer")

    # canary: 90 / 10 from the split editor
    b.until(lambda: b.all("traffic-1") and b.all("traffic-2"), 30, "the split editor")
    b.type("traffic-1", "90")
    b.type("traffic-2", "10")
    b.click("traffic-submit")
    b.until(lambda: "v1 90%" in b.text("traffic-result"), 30, "the split to apply")
    spec = api(platform, "GET", "/api/v1/services/iris").json()["spec"]
    assert spec["traffic"] == [{"version": 1, "percent": 90.0}, {"version": 2, "percent": 10.0}]
    assert spec["replicas"] == 1, "the split changed nothing else"
    b.until(lambda: "v1 90%" in b.text("traffic-status"), 120, "the split to serve")
    # a call pinned to version 1 from the form
    b.find("predict-version").send_keys("v1")
    b.click("predict-submit")
    b.until(lambda: "version 1" in b.text("predict-meta")
            and "setosa" in b.text("predict-output"), 60, "the pinned answer")

    # delete asks first; cancel keeps it, confirm removes it and the row goes
    b.click("action-delete")
    b.click("confirm-cancel")
    assert api(platform, "GET", "/api/v1/services/iris").status_code == 200
    b.click("action-delete")
    b.click("confirm")
    b.find("service-list")
    b.until(lambda: not b.all("service-row") or all(
        r.get_attribute("data-service") != "iris" for r in b.all("service-row")), 30,
        "the row to go")
    assert api(platform, "GET", "/api/v1/services/iris").status_code == 404
    assert b.javascript_errors() == []


def test_image_input_from_the_file_picker(console: Browser, platform: RunningPlatform,
                                         tmp_path: Path) -> None:
    src = predictor(tmp_path, "imgsize", IMAGE_SIZE, inputs=[
        {"name": "image", "type": "image"}, {"name": "caption", "type": "text"}])
    deploy(platform, src, tmp_path, "imgsize")
    b = console
    b.until(lambda: status_in_list(b, "imgsize") == "running", 60, "the row")
    b.row("imgsize").click()
    picker = b.find("input-image")
    assert picker.get_attribute("type") == "file" and picker.get_attribute("accept") == "image/*"
    picker.send_keys(str(PNG))
    b.until(lambda: b.find("preview-image").get_attribute("src").startswith("blob:"), 30,
            "the preview")
    b.type("input-caption", "a <b>bold</b> caption")
    b.click("predict-submit")
    b.until(lambda: '"bytes"' in b.text("predict-output"), 60, "the answer")
    out = json.loads(b.text("predict-output"))
    assert out == {"bytes": PNG.stat().st_size, "png": True, "caption": "a <b>bold</b> caption"}
    assert b.javascript_errors() == []


def test_model_output_is_shown_as_text_never_run(console: Browser, platform: RunningPlatform,
                                                tmp_path: Path) -> None:
    deploy(platform, predictor(tmp_path, "hostile", HOSTILE), tmp_path, "hostile")
    b = console
    b.go("#/services/hostile")
    b.type("input-text", "!")
    b.click("predict-submit")
    b.until(lambda: "<script>" in b.text("predict-output"), 60, "the answer")
    assert b.text("predict-output").startswith("<script>window.__pwned = 1</script><img")
    assert b.driver.execute_script("return window.__pwned") is None
    output = b.find("predict-output")
    assert output.find_elements("css selector", "script, img") == []
    assert b.javascript_errors() == []


def test_keys_users_and_gitops_pages(console: Browser, platform: RunningPlatform) -> None:
    b = console
    b.until(lambda: status_in_list(b, "hostile") and status_in_list(b, "imgsize"), 30,
            "both rows")
    b.screenshot("list")
    b.click("nav-keys")
    b.type("key-name", "console-made")
    b.type("key-scopes", "invoke:imgsize")
    b.click("key-submit")
    token = b.until(lambda: b.text("key-token"), 30, "the new key's token")
    assert token.startswith("mp_")
    keys = api(platform, "GET", "/api/v1/keys").json()["keys"]
    made = next(k for k in keys if k["name"] == "console-made")
    assert made["scopes"] == ["invoke:imgsize"]
    b.click(f"revoke-{made['id']}")
    b.click("confirm")
    b.until(lambda: next(k for k in api(platform, "GET", "/api/v1/keys?revoked=1").json()[
        "keys"] if k["id"] == made["id"])["revoked_at"], 30, "the revocation")

    b.click("nav-users")
    b.type("user-name", "carol")
    b.type("user-password", "correct horse battery")
    b.click("user-submit")
    b.until(lambda: any(r.get_attribute("data-user") == "carol" for r in b.all("user-row")),
            30, "carol listed")
    users = api(platform, "GET", "/api/v1/users").json()["users"]
    assert any(u["username"] == "carol" and u["role"] == "member" for u in users)

    b.click("nav-gitops")
    b.until(lambda: "No watcher" in b.text("gitops-empty"), 30, "the GitOps page")
    b.click("nav-batches")
    b.find("batches")
    assert b.javascript_errors() == []


def test_password_login_uses_the_session_cookie_and_csrf(browser: Browser,
                                                         platform: RunningPlatform) -> None:
    """carol (made above) logs in with her password: an HttpOnly cookie the page's
    scripts cannot read, and a CSRF token the page sends with each change."""
    b = browser
    b.open()
    b.driver.find_element("css selector", '[data-testid="logout"]').click()
    b.find("login")
    b.type("login-username", "carol")
    b.type("login-password", "correct horse battery")
    b.click("login-password-submit")
    b.find("service-list")
    assert "carol (member)" in b.text("whoami")
    assert "modelport_session" not in b.driver.execute_script("return document.cookie")
    cookie = b.driver.get_cookie("modelport_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # a change sent with the cookie alone (as a forged cross-site form would) is refused
    r = httpx.post(platform.url + "/api/v1/keys", json={"scopes": []},
                   cookies={"modelport_session": cookie["value"]}, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.csrf", r.text
    # the page's own change carries the CSRF header and works
    b.click("nav-keys")
    b.type("key-name", "carols")
    b.type("key-scopes", "read")
    b.click("key-submit")
    assert b.until(lambda: b.text("key-token"), 30, "carol's key").startswith("mp_")
    b.driver.find_element("css selector", '[data-testid="logout"]').click()
    b.find("login")
    b.open("#/services")
    b.find("login")
    assert not b.all("service-list")
    assert b.javascript_errors() == []


def test_every_request_went_to_the_platform_itself(browser: Browser) -> None:
    assert browser.foreign_requests() == []
    assert browser.javascript_errors() == []


@pytest.fixture(autouse=True)
def _no_script_errors_left(browser: Browser) -> None:
    """Each test starts from a clean log (errors of one test are reported by it)."""
    browser.collect_log()
    browser.log.clear()


def test_console_files_are_cached_by_etag_and_carry_the_policy(platform: RunningPlatform
                                                               ) -> None:
    with httpx.Client(base_url=platform.url, timeout=30) as http:
        js = http.get("/console/assets/app.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert js.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in js.headers["content-security-policy"]
        again = http.get("/console/assets/app.js", headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304 and not again.content
        assert http.get("/console/", follow_redirects=False).headers["location"] == "/console"
        # the files need no credential, the data does
        assert http.get("/api/v1/services").status_code == 401


def test_traffic_route_sets_the_split_alone_and_explains_bad_ones(
        platform: RunningPlatform, tmp_path: Path) -> None:
    src = predictor(tmp_path, "split", "class Predictor:\n    def predict(self, text):\n"
                    "        return text\n")
    deploy(platform, src, tmp_path, "split")
    path = "/api/v1/services/split/traffic"
    bad = api(platform, "PUT", path, json={"traffic": [{"version": 1, "percent": 60}]})
    assert bad.status_code == 422, bad.text
    assert "add up to 60" in json.dumps(bad.json()["error"])
    assert api(platform, "PUT", path, content=b"[]").status_code == 422
    api(platform, "PUT", "/api/v1/services/split",
        json={"metadata": {"name": "split"}, "spec": {"replicas": 2}}).raise_for_status()
    ok = api(platform, "PUT", path, json={"traffic": [{"version": 1, "percent": 100}]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["spec"]["traffic"] == [{"version": 1, "percent": 100.0}]
    assert ok.json()["spec"]["replicas"] == 2, "the rest of the spec is kept"
    assert api(platform, "PUT", "/api/v1/services/nope/traffic",
               json={"traffic": []}).status_code == 404
    # the stats time series the charts draw: 60 points of 15 s, the call just made in one
    httpx.post(platform.url + "/v1/services/split/infer", content=b"hi",
               headers={"Content-Type": "text/plain"}, timeout=60).raise_for_status()
    stats = api(platform, "GET", "/api/v1/services/split/stats?series=15").json()
    assert len(stats["series"]) == 60
    assert sum(p["rps"] for p in stats["series"]) * 15 == pytest.approx(1, abs=0.01)
    assert api(platform, "GET", "/api/v1/services/split/stats?series=0").json().get(
        "series") is None
    assert api(platform, "GET", "/api/v1/services/split/stats?series=999").status_code == 422
    api(platform, "DELETE", "/api/v1/services/split").raise_for_status()


def test_a_bad_package_shows_every_problem_with_its_fix(console: Browser,
                                                        tmp_path: Path) -> None:
    b = console
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({
        "name": "broken", "predictor": "predict:Nope",
        "input": [{"name": "x", "type": "no-such-type"}], "timeout_s": -1}))
    (broken / "predict.py").write_text("class Predictor:\n    def predict(self, x):\n"
                                       "        return x\n")
    b.click("create-open")
    b.type("create-name", "broken")
    b.find("create-file").send_keys(str(zip_of(broken, tmp_path / "broken.zip")))
    b.click("create-submit")
    box = b.find("create-error", timeout=120)
    items = b.find("problems").find_elements("css selector", "li")
    assert len(items) == 3, box.text  # every problem, not only the first
    assert "3 problems" in box.text, box.text
    assert "no-such-type" in box.text and "timeout_s" in box.text, box.text
    assert all("Fix:" in li.text for li in items), [li.text for li in items]
    # a file that is not a zip at all: one clear error, and nothing was created
    not_zip = tmp_path / "not-a.zip"
    not_zip.write_text("plain text, not a zip archive")
    b.open("#/create")
    b.type("create-name", "notzip")
    b.find("create-file").send_keys(str(not_zip))
    b.click("create-submit")
    b.until(lambda: "zip" in b.text("create-error").lower(), 60, "the not-a-zip error")
    names = {s["name"] for s in httpx.get(f"{b.base}/api/v1/services", headers=AUTH_HEADERS,
                                          timeout=30).json()["services"]}
    assert not {"broken", "notzip"} & names, names
    assert b.javascript_errors() == []


def test_async_task_and_log_follow_on_the_service_page(console: Browser,
                                                       platform: RunningPlatform,
                                                       tmp_path: Path) -> None:
    b = console
    deploy(platform, predictor(tmp_path, "echoer", ECHO_LOUD), tmp_path, "echoer")
    b.open("#/services/echoer")
    b.type("input-text", "from a task")
    b.click("predict-async")
    row = b.until(lambda: [r for r in b.all("task-row") if "succeeded" in r.text], 120,
                  "the task to succeed")
    row[0].find_element("css selector", "button").click()
    b.until(lambda: "FROM A TASK" in b.text("task-result"), 30, "the task's result")
    # follow the app log: a new call's log line arrives without a reload
    b.find("logs-follow").click()
    b.type("input-text", "followed line")
    b.click("predict-submit")
    b.until(lambda: "echoer saw followed line" in b.text("logs"), 60, "the followed log line")
    assert b.javascript_errors() == []


def test_gitops_page_after_a_real_watch(console: Browser, platform: RunningPlatform,
                                        tmp_path: Path) -> None:
    from tests.watcher.support import Repo, cli, service_yaml

    b = console
    repo = Repo(tmp_path / "repo")
    repo.write("config/echo.yaml", service_yaml("gitecho"))
    synced = repo.commit("add gitecho")
    done = cli(platform.url, "watch", str(repo.config), "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    b.open("#/gitops")
    b.until(lambda: synced[:12] in b.text("gitops-commit"), 60, "the synced commit")
    row = next(r for r in b.all("gitops-service") if r.get_attribute("data-service")
               == "gitecho")
    assert "Synced" in row.text, row.text
    # a broken file: the next sync fails, and the page names the file, line and problem
    repo.write("config/broken.yaml", service_yaml("broken", replicas=-1))
    repo.commit("break it")
    cli(platform.url, "watch", str(repo.config), "--once")
    b.until(lambda: "broken.yaml:6" in b.text("gitops-error"), 60, "the failed commit")
    b.until(lambda: any(r.get_attribute("data-service") == "broken" and "Failed" in r.text
                        for r in b.all("gitops-service")), 30, "the failed service")
    b.screenshot("gitops")
    assert b.javascript_errors() == []
