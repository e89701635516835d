#!/usr/bin/python3
"""The console (docs/console.md) in a real browser: a real `spine serve` on a fresh database of
the test run's PostgreSQL, cases started over the API, and headless Debian chromium driven by
selenium. Signs in, finds a case in the list, opens its timeline, cancels it, sees a read-only
token refused the cancel, and sees a wrong token sent back to the sign-in with the reason. On a
second server with the shipped playbooks and manifests: claims and resolves a manual_credit
approval task through its form (400 and 409 shown) until its case completes, then reads the
experiments chart and redelivers a dead letter from the outbox page. On a third, with a provider
simulator down: the providers page shows the breaker open.
Screenshots go to the folder given as argv[1]. Where chromium cannot start, this fails with why.

Run by ctest (tests/CMakeLists.txt) with SPINE_BIN, SPINE_SRC and SPINE_TEST_HOME set."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

SPINE = os.environ["SPINE_BIN"]
SRC = os.environ["SPINE_SRC"]
ART = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), "artifacts", "console")
WAIT = 30  # seconds any condition may take: a deadline, not a timing


def run(*args, env=None):
    out = subprocess.run(args, cwd=SRC, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def deadline(fn, what, seconds=WAIT):
    end = time.monotonic() + seconds
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition with a deadline, as T.wait_until


class Server:
    """A `spine serve` on its own database, as tests/lib/spine_test.lua's T.serve."""

    def __init__(self, db="browser_console", shipped=False, extra_env=None):
        """The test playbooks and no manifest in force, or (shipped) the repository's own
        playbooks and manifests, as T.serve runs them (tests/spec/api/api_tasks_spec.lua);
        extra_env: more of serve's environment (its providers directory, a secret)."""
        self.url = run(os.path.join(SRC, "tests/lib/testpg"), "newdb", db).strip()
        self.tmp = None if shipped else tempfile.mkdtemp(prefix="console-manifests-")
        self.log = tempfile.NamedTemporaryFile(prefix="console-serve-", suffix=".log", delete=False)
        env = dict(os.environ, SPINE_DATABASE_URL=self.url, SPINE_LISTEN="127.0.0.1:0")
        env.pop("SPINE_PLAYBOOKS", None)
        env.pop("SPINE_MANIFESTS", None)
        if not shipped:
            env.update(SPINE_PLAYBOOKS="tests/playbooks", SPINE_MANIFESTS=self.tmp)
        env.update(extra_env or {})
        self.env = env
        self.proc = subprocess.Popen([SPINE, "serve"], cwd=SRC, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def port():
            if self.proc.poll() is not None:
                raise RuntimeError("spine serve exited: " + self.read_log())
            m = re.search(r'"msg":"http listening","addr":"[^"]*:(\d+)"', self.read_log())
            return m and int(m.group(1))

        self.base = f"http://127.0.0.1:{deadline(port, 'spine serve to listen')}"

    def read_log(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def token(self, scopes, subject=None):
        subject = subject or "ops:browser-" + scopes.replace(":", "-").replace(",", "-")
        out = run(SPINE, "tokens", "create", "--subject", subject,
                  "--scopes", scopes, "--json", env=self.env)
        return json.loads(out)["token"]

    def api(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                return r.status, json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            os.rmdir(self.tmp)
        os.unlink(self.log.name)


# Chromium's profile and its scratch directories (it leaves org.chromium.Chromium.* in $TMPDIR
# behind): all in one directory the test removes when it ends.
BROWSER_TMP = tempfile.mkdtemp(prefix="console-browser-")


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1440,1000", "--disable-extensions", "--no-first-run",
              "--user-data-dir=" + os.path.join(BROWSER_TMP, "profile")):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service("/usr/bin/chromedriver", env=dict(os.environ, TMPDIR=BROWSER_TMP))
    try:
        return webdriver.Chrome(service=service, options=opts)
    except (WebDriverException, OSError) as e:
        raise SystemExit(f"FAIL: chromium cannot start (install chromium and chromium-driver with "
                         f"scripts/install-deps): {str(e).strip()}")


def shot(d, name):
    os.makedirs(ART, exist_ok=True)
    path = os.path.join(ART, name + ".png")
    d.save_screenshot(path)
    print("screenshot:", path)


def text_of(d, css):
    try:
        return d.find_element(By.CSS_SELECTOR, css).text
    except Exception:  # absent or replaced by a live refresh: not yet
        return ""


def sign_in(d, w, token):
    field = w.until(EC.visibility_of_element_located((By.ID, "token")))
    field.clear()
    field.send_keys(token)
    d.find_element(By.ID, "signin-submit").click()


def check_headers(srv):
    with urllib.request.urlopen(srv.base + "/", timeout=WAIT) as r:
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"]
    with urllib.request.urlopen(srv.base + "/console/app.js", timeout=WAIT) as r:
        assert r.headers["Content-Type"].startswith("text/javascript"), r.headers["Content-Type"]
        assert r.headers["ETag"], "no ETag"


def use_token(d, token):
    d.execute_script("sessionStorage.setItem('spine.token', arguments[0])", token)
    d.refresh()


def tasks_flow(d, w):
    """A manual_credit case above the approval threshold waits for a credit_approval task: it is
    claimed in the inbox, refused to another (409) and without an outcome (400, by the field),
    resolved through its form, and its case completes. Then the experiments and the outbox."""
    srv = Server("browser_tasks", shipped=True)
    try:
        admin = srv.token("admin")
        other = srv.token("workflows:read,tasks:resolve", subject="ops:browser-ann")
        s, out, _ = srv.api("POST", "/v1/intents/RegisterCustomer", admin, {"args": {
            "customer_id": "cu-browser-9", "name": "Erika Mustermann",
            "email": "erika@example.org"}})
        assert s == 200, (s, out)
        s, case, _ = srv.api("POST", "/v1/cases", admin, {"process": "manual_credit", "input": {
            "customer_id": "cu-browser-9", "amount_cents": 25000, "reason": "billing error",
            "requested_by": "ops:jane"}})
        assert s == 201, (s, case)

        def the_task():
            items = srv.api("GET", "/v1/tasks?kind=credit_approval", admin)[1].get("items") or []
            return next((t for t in items if t["workflow_id"] == case["id"]), None)
        task = deadline(the_task, "the approval task")
        tid = task["task_id"]

        # The inbox lists it; claiming it makes the admin its assignee.
        d.get(srv.base + "/#/tasks")
        sign_in(d, w, admin)
        row = f'#tasks-table tr[data-id="{tid}"]'
        w.until(lambda _: "credit_approval" in text_of(d, row))
        assert "unclaimed" in text_of(d, row + " td.assignee")
        w.until(EC.element_to_be_clickable((By.CSS_SELECTOR, row + " button.task-claim"))).click()
        w.until(lambda _: "ops:browser-admin" in text_of(d, row + " td.assignee"))
        shot(d, "09-tasks")

        # Its page: the form from the kind's declaration.
        d.find_element(By.CSS_SELECTOR, row + " a.task-link").click()
        outcome = w.until(EC.visibility_of_element_located((By.ID, "task-outcome")))
        opts = [o.get_attribute("value") for o in outcome.find_elements(By.TAG_NAME, "option")]
        assert opts == ["", "approved", "rejected"], opts
        assert d.find_element(By.ID, "task-field-comment").get_attribute("type") == "text"
        assert "*" in text_of(d, 'label[for="task-outcome"]')
        shot(d, "10-task-form")

        # No outcome: the server's 400 is shown next to the outcome.
        d.find_element(By.ID, "task-resolve").click()
        w.until(lambda _: text_of(d, "#task-error-outcome") != "")

        # Another resolver: refused 409, claimed by the admin.
        use_token(d, other)
        w.until(EC.visibility_of_element_located((By.ID, "task-outcome")))
        Select(d.find_element(By.ID, "task-outcome")).select_by_value("approved")
        d.find_element(By.ID, "task-resolve").click()
        w.until(lambda _: "409" in text_of(d, "#task-message"))
        assert "ops:browser-admin" in text_of(d, "#task-message")
        shot(d, "11-task-conflict")

        # The assignee resolves it (approved): the link to its case, which completes.
        use_token(d, admin)
        w.until(EC.visibility_of_element_located((By.ID, "task-outcome")))
        Select(d.find_element(By.ID, "task-outcome")).select_by_value("approved")
        d.find_element(By.ID, "task-field-comment").send_keys("checked the bill")
        d.find_element(By.ID, "task-resolve").click()
        link = w.until(EC.element_to_be_clickable((By.ID, "task-workflow-link")))
        assert link.text == case["id"], link.text
        shot(d, "12-task-resolved")
        link.click()
        w.until(lambda _: d.find_element(By.ID, "case").get_attribute("data-status") == "completed")
        w.until(lambda _: "completed" in text_of(d, "#lane-steps"))
        shot(d, "13-case-approved")
        t = srv.api("GET", f"/v1/tasks/{tid}", admin)[1]
        assert t["status"] == "resolved" and t["resolved_by"] == "ops:browser-admin", t

        # Experiments: manual_credit's control variant, one case started and completed, drawn.
        d.find_element(By.CSS_SELECTOR, 'nav a[data-page="experiments"]').click()
        exp = 'section[data-process="manual_credit"]'
        w.until(lambda _: d.find_elements(By.CSS_SELECTOR, exp + ' g.exp-variant[data-variant="control"]'))
        cells = [c.text for c in d.find_elements(By.CSS_SELECTOR, exp + ' tr[data-variant="control"] td')]
        assert cells[:3] == ["control", "1", "1"], cells
        assert d.find_elements(By.CSS_SELECTOR, exp + " svg rect.exp-seg")
        shot(d, "14-experiments")

        # The outbox: one delivery made dead, listed, redelivered from the page.
        dead = deadline(lambda: run("psql", srv.url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c",
                                    "UPDATE spine.outbox_deliveries SET status = 'dead',"
                                    " last_error = 'browser test: refused' WHERE (subscriber, event_id)"
                                    " = (SELECT subscriber, event_id FROM spine.outbox_deliveries"
                                    " ORDER BY event_id LIMIT 1) RETURNING subscriber || ' ' || event_id"
                                    ).split("\n")[0].strip(), "an outbox delivery")
        sub, event = dead.split(" ")
        d.find_element(By.CSS_SELECTOR, 'nav a[data-page="outbox"]').click()
        w.until(lambda _: sub in text_of(d, "#subscribers-table"))
        row = f'#dead-table tr[data-event="{event}"][data-subscriber="{sub}"]'
        w.until(lambda _: "browser test: refused" in text_of(d, row))
        shot(d, "15-outbox")
        d.find_element(By.CSS_SELECTOR, row + " button.dead-redeliver").click()
        w.until(lambda _: "back in line" in text_of(d, "#outbox-message"))
        w.until(lambda _: not d.find_elements(By.CSS_SELECTOR, row))
        shot(d, "16-outbox-redelivered")

        # The providers: the shipped adapters, each with its breaker (closed: nothing failed).
        d.find_element(By.CSS_SELECTOR, 'nav a[data-page="providers"]').click()
        w.until(lambda _: "acme_energy" in text_of(d, "#providers-table"))
        assert text_of(d, "#breaker-acme_energy") == "closed", text_of(d, "#breaker-acme_energy")
        shot(d, "17-providers")
    except Exception:
        print("tasks serve log:", srv.read_log()[-4000:], file=sys.stderr)
        raise
    finally:
        srv.stop()



def breaker_flow(d, w):
    """A provider outage, as tests/spec/api/api_reads_spec.lua makes it: `spine simulate` down,
    acme_energy pointed at it with a breaker that opens after 3 failures, four provider calls;
    the providers page shows acme_energy's breaker open (and gridco's closed)."""
    sim = subprocess.Popen([SPINE, "simulate", "--port", "0", "--smtp-port", "0"], cwd=SRC,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, text=True)
    pdir = tempfile.mkdtemp(prefix="console-providers-")
    srv = None
    try:
        ready = json.loads(sim.stdout.readline())
        run("cp", "-r", os.path.join(SRC, "providers") + "/.", pdir)
        with open(os.path.join(SRC, "providers/providers.json"), encoding="utf-8") as f:
            settings = json.load(f)
        settings.pop("environments", None)
        settings.setdefault("smtp", {}).update(url=f"smtp://127.0.0.1:{ready['smtp_port']}",
                                               **{"from": "spine@localhost"})
        settings.setdefault("acme_energy", {}).update(
            base_url=ready["url"], rate_limit=100000, breaker={"failures": 3, "cooldown": "1h"})
        with open(os.path.join(pdir, "providers.json"), "w", encoding="utf-8") as f:
            json.dump(settings, f)
        req = urllib.request.Request(ready["url"] + "/_sim/outage", data=b'{"down": true}',
                                     method="POST")
        urllib.request.urlopen(req, timeout=WAIT).close()
        srv = Server("browser_breaker", extra_env={
            "SPINE_PROVIDERS": pdir, "SPINE_SECRET_ACME_ENERGY_API_KEY": "acme-key-5f2b"})
        reader = srv.token("workflows:read")
        for i in range(4):
            wf = json.loads(run(SPINE, "start", "tests/playbooks/provider_switch.lua", "--input",
                                json.dumps({"contract_id": f"DOWN-{i}", "provider": "acme_energy",
                                            "operation": "submit_activation"}), "--json",
                                env=srv.env))
            deadline(lambda: json.loads(run(SPINE, "show", wf["id"], "--json", env=srv.env))
                     ["status"] == "completed", f"case {wf['id']} to complete")
        d.get(srv.base + "/#/providers")  # another origin: sign in there
        sign_in(d, w, reader)
        d.get(srv.base + "/#/providers")
        w.until(lambda _: text_of(d, "#breaker-acme_energy") == "open")
        assert text_of(d, "#breaker-gridco") == "closed", text_of(d, "#breaker-gridco")
        shot(d, "18-providers-breaker-open")
    except Exception:
        if srv:
            print("breaker serve log:", srv.read_log()[-4000:], file=sys.stderr)
        raise
    finally:
        if srv:
            srv.stop()
        sim.terminate()
        sim.wait(WAIT)
        run("rm", "-rf", pdir)

def main():
    srv = Server()
    d = None
    try:
        check_headers(srv)
        admin = srv.token("admin")
        reader = srv.token("workflows:read")
        status, waiter, _ = srv.api("POST", "/v1/cases", admin,
                                    {"process": "waiter", "subject": "cu-browser-1", "input": {}})
        assert status == 201, (status, waiter)
        status, saga, _ = srv.api("POST", "/v1/cases", admin,
                                  {"process": "saga", "subject": "cu-browser-saga", "input": {}})
        assert status == 201, (status, saga)
        deadline(lambda: srv.api("GET", f"/v1/workflows/{waiter['id']}", admin)[1]["status"] ==
                 "waiting", "the waiter to wait")
        deadline(lambda: srv.api("GET", f"/v1/workflows/{saga['id']}", admin)[1]["status"] ==
                 "compensated", "the saga to compensate")

        d = browser()
        w = WebDriverWait(d, WAIT, ignored_exceptions=[StaleElementReferenceException])
        d.get(srv.base + "/")
        w.until(EC.visibility_of_element_located((By.ID, "signin")))
        shot(d, "01-signin")

        # Sign in; the list shows the case by its subject, with counts by status.
        sign_in(d, w, admin)
        w.until(lambda _: "cu-browser-1" in text_of(d, "#cases-table"))
        w.until(lambda _: text_of(d, "#count-waiting").startswith("1"))
        assert waiter["id"] in text_of(d, "#cases-table")
        shot(d, "02-cases")

        # Filter by process: only the waiter's case is listed.
        d.find_element(By.ID, "filter-process").send_keys("waiter")
        d.find_element(By.ID, "filter-apply").click()
        w.until(lambda _: "process=waiter" in d.current_url)
        w.until(lambda _: "cu-browser-1" in text_of(d, "#cases-table") and
                "cu-browser-saga" not in text_of(d, "#cases-table"))
        # The counts follow the filter: per process and variant, only the waiter's row.
        w.until(lambda _: "waiter" in text_of(d, "#counts-by-variant") and
                "saga" not in text_of(d, "#counts-by-variant"))

        # Open its timeline: the explain sentence and its steps, the wait named.
        w.until(EC.element_to_be_clickable(
            (By.CSS_SELECTOR, f'tr[data-id="{waiter["id"]}"] a.case-link'))).click()
        w.until(lambda _: "waits for signal" in text_of(d, "#explain"))
        w.until(lambda _: "go" in text_of(d, "#lane-steps"))
        assert "waiting" in text_of(d, "#lane-steps")
        shot(d, "03-case-waiting")

        # The saga: its compensations in their own lane.
        d.get(f"{srv.base}/#/case/{saga['id']}")
        w.until(lambda _: "compensation" in text_of(d, "#lane-compensations"))
        assert "BenchRecord" in text_of(d, "#lane-steps")
        shot(d, "04-case-compensated")

        # A read-only token (GET /v1/whoami: workflows:read) is offered no action, and told why.
        d.execute_script("sessionStorage.setItem('spine.token', arguments[0])", reader)
        d.get(f"{srv.base}/#/case/{waiter['id']}")
        d.refresh()
        w.until(lambda _: "workflows:operate" in text_of(d, "#actions-read-only"))
        assert not d.find_elements(By.ID, "action-cancel")
        shot(d, "05-read-only")

        # An operator cancels it and sees it cancelled.
        d.execute_script("sessionStorage.setItem('spine.token', arguments[0])", admin)
        d.refresh()
        w.until(EC.element_to_be_clickable((By.ID, "action-cancel"))).click()
        w.until(EC.element_to_be_clickable((By.ID, "action-cancel-confirm"))).click()
        w.until(lambda _: d.find_element(By.ID, "case").get_attribute("data-status") == "cancelled")
        w.until(lambda _: "cancelled" in text_of(d, "#explain").lower() or
                "cancel" in text_of(d, "#case"))
        assert srv.api("GET", f"/v1/workflows/{waiter['id']}", admin)[1]["status"] == "cancelled"
        shot(d, "06-case-cancelled")

        # Incidents: the page answers (none open here).
        d.find_element(By.CSS_SELECTOR, 'nav a[data-page="incidents"]').click()
        w.until(lambda _: "incidents" in text_of(d, "#incidents").lower())
        shot(d, "07-incidents")

        # A wrong token: the next call is refused 401, the sign-in comes back saying why.
        d.execute_script("sessionStorage.setItem('spine.token', 'spn_wrong')")
        d.get(srv.base + "/#/cases")
        d.refresh()
        w.until(EC.visibility_of_element_located((By.ID, "signin")))
        w.until(lambda _: "401" in text_of(d, "#signin-reason"))
        assert d.execute_script("return sessionStorage.getItem('spine.token')") is None
        shot(d, "08-signin-refused")

        tasks_flow(d, w)
        breaker_flow(d, w)

        # No page broke the policy or threw.
        expected = ("401", "403", "400 (Bad Request)", "409 (Conflict)")  # the refusals shown
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and
                  not any(x in e["message"] for x in expected)]
        assert not errors, errors
        print("ok: console flows passed")
    except Exception:
        if d:
            shot(d, "failure")
            print("browser log:", d.get_log("browser"), file=sys.stderr)
        print("serve log:", srv.read_log()[-4000:], file=sys.stderr)
        raise
    finally:
        if d:
            d.quit()
        srv.stop()
        subprocess.run(["rm", "-rf", BROWSER_TMP], check=False)


if __name__ == "__main__":
    main()
