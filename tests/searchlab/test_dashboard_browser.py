"""The live view in a real headless browser: `searchlab dashboard` serves a search while it runs, and the
page shows the run's study and its trials. Skipped where no Chromium, chromedriver or selenium is installed
(Debian: `apt-get install chromium chromium-driver`; `pip install selenium`)."""

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from searchlab.store.run_store import RunStore

pytest.importorskip("optuna_dashboard",
                    reason="the dashboard extra is not installed (pip install searchlab[dashboard])")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

DATA = Path(__file__).resolve().parents[1] / "data"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--window-size=1280,900"]


def browser():
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium and chromedriver installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.binary_location = chromium
    try:
        return webdriver.Chrome(options=options, service=Service(driver))
    except Exception as exc:  # an installed browser that cannot start here (no display libraries, ...)
        pytest.skip(f"Chromium did not start: {str(exc).splitlines()[0]}")


def wait_for(fn, what: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def trial_count(run_dir: Path) -> int:
    with RunStore.open(run_dir) as store:
        return len(store.trials())


@pytest.mark.slow
def test_the_dashboard_shows_a_running_search(tmp_path):
    driver = browser()
    run_dir = tmp_path / "binary-live"
    search = subprocess.Popen(
        [sys.executable, "-m", "searchlab.cli", "search", "binary", "--net", "vgg-small",
         "--data", f"cifar10:{DATA / 'cifar10_mini'}", "--population", "4", "--generations", "6",
         "--width-scale", "0.125", "--train-size", "60", "--epochs-per-candidate", "1", "--no-finalize",
         "--quiet", "--run", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    board = None
    try:
        wait_for(lambda: trial_count(run_dir) >= 1 if (run_dir / "run.sqlite").exists() else False,
                 "the search's first trial")
        board = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "dashboard", str(run_dir), "--port", "0",
                                  "--refresh", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = board.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/dashboard)", line)
        assert match, line + board.stderr.read() if board.poll() is not None else line
        url = match.group(1)

        driver.get(url)
        wait_for(lambda: "binary-live" in driver.find_element("tag name", "body").text, "the study on the page")
        driver.get(f"{url}/studies/0/trials")
        shown = wait_for(lambda: re.search(r"(\d+) Trials", driver.find_element("tag name", "body").text),
                         "the trials list")
        assert search.poll() is None, "the search ended before the page was checked"
        assert 1 <= int(shown.group(1)) <= trial_count(run_dir)

        search.send_signal(signal.SIGINT)  # stop it as Ctrl-C would; the run stays resumable
        search.wait(timeout=60)
        final = trial_count(run_dir)

        def shows_all():
            driver.refresh()
            text = wait_for(lambda: driver.find_element("tag name", "body").text, "the page")
            found = re.search(r"(\d+) Trials", text)
            return found and int(found.group(1)) == final
        wait_for(shows_all, f"all {final} trials on the page", timeout=30)
        driver.get(f"{url}/studies/0")
        wait_for(lambda: "Pareto Front" in driver.find_element("tag name", "body").text, "the study page")
        time.sleep(1.0)  # the plots draw after the text
        shot = tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
        search.kill()
        if board is not None:
            board.send_signal(signal.SIGINT)
            try:
                board.wait(timeout=10)
            except subprocess.TimeoutExpired:
                board.kill()
