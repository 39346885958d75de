"""The ops console in a real browser (contract/browser/run.sh).

Signs in with the sandbox's API key, finds a shipment by reference, opens its
timeline, retries a failed webhook delivery and sees it succeed; checks that pages
work by keyboard, that the time script ran under the console's CSP, and takes
screenshots at desktop (1280 px) and phone (390 px) width.
"""

import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import WebDriverException


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


def wait_for(driver, condition, message, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    fail(f"{message} (at {driver.current_url})\n{driver.find_element(By.TAG_NAME, 'main').text[:2000]}")


def settled(condition):
    """`condition`, read as False while a page is being replaced (its elements go stale)."""

    def check():
        try:
            return condition()
        except WebDriverException:
            return False

    return check


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def h1(driver):
    return driver.find_element(By.TAG_NAME, "h1").text


def shot(driver, folder, name, width):
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 2400))
    path = os.path.join(folder, f"{name}-{'desktop' if width >= 1000 else 'phone'}.png")
    driver.save_screenshot(path)
    driver.set_window_size(1280, 900)
    print(f"screenshot {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    d = browser()
    d.implicitly_wait(5)
    try:
        # Signed out, the console sends the browser to sign in and back.
        d.get(f"{args.base}/console/")
        expect("/console/sign-in" in d.current_url, f"signed out goes to sign-in, got {d.current_url}")
        field = d.find_element(By.NAME, "api_key")
        field.send_keys(args.key)
        field.send_keys(Keys.ENTER)
        # A form sent with Enter: the next page is waited for, not assumed.
        wait_for(d, settled(lambda: h1(d) == "Overview"), "after sign-in the overview")
        expect(args.key not in d.page_source, "the API key is not on the page")
        cookie = d.get_cookie("sg_console")
        expect(cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", f"session cookie {cookie}")
        # The script converted times to the viewer's zone (the UTC text stays in the title).
        time_el = d.find_element(By.CSS_SELECTOR, "time[datetime]")
        expect(time_el.get_attribute("title"), "times are converted by the console's script")
        expect(d.find_element(By.CSS_SELECTOR, "svg.chart"), "the overview chart")
        # Keyboard: the first Tab stops on a real link with a visible focus ring.
        d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        active = d.switch_to.active_element
        expect(active.tag_name == "a", f"Tab reaches a link, got {active.tag_name}")
        outline = active.value_of_css_property("outline-style")
        expect(outline and outline != "none", f"focus is visible (outline {outline})")
        shot(d, args.screenshots, "overview", 1280)
        shot(d, args.screenshots, "overview", 390)

        # Find a shipment by reference and open its timeline.
        d.find_element(By.LINK_TEXT, "Shipments").click()
        q = d.find_element(By.NAME, "q")
        q.send_keys("DEMO-DELIVERED")
        q.send_keys(Keys.ENTER)
        # The search is a new page: read its rows only once it has replaced the full list
        # (read at once, they were sometimes still the unfiltered page's).
        wait_for(d, lambda: "DEMO-DELIVERED" in d.current_url, "the search's page loads")
        wait_for(
            d,
            settled(lambda: len(d.find_elements(By.CSS_SELECTOR, "table.stack tbody tr")) == 1),
            "one shipment found by reference",
        )
        rows = d.find_elements(By.CSS_SELECTOR, "table.stack tbody tr")
        expect("delivered" in rows[0].text, f"the demo shipment is delivered: {rows[0].text}")
        rows[0].find_element(By.CSS_SELECTOR, "a").click()
        expect(h1(d).startswith("Shipment shp_"), f"the shipment page, got {h1(d)!r}")
        timeline = d.find_element(By.CSS_SELECTOR, "ol.timeline").text
        for kind in ("TRACKING", "HISTORY", "CARRIER CALL", "WEBHOOK"):
            expect(kind in timeline.upper(), f"the timeline shows {kind.lower()} entries")
        shot(d, args.screenshots, "shipment", 1280)
        shot(d, args.screenshots, "shipment", 390)

        # A failed delivery to the demo subscriber: retry it and see it succeed.
        d.find_element(By.LINK_TEXT, "Webhooks").click()
        d.find_element(By.XPATH, "//tr[contains(., 'fails each')]//a[starts-with(normalize-space(), 'whe_')]").click()
        endpoint_url = d.current_url.split("?")[0]
        deadline = time.time() + 60
        delivery = None
        while time.time() < deadline:
            d.get(f"{endpoint_url}?status=failed")
            rows = d.find_elements(By.CSS_SELECTOR, "table.stack tbody tr")
            if rows:
                delivery = rows[0].find_element(By.CSS_SELECTOR, "td").text.split()[0]
                break
            time.sleep(1)
        expect(delivery, "a failed delivery to retry")
        expect("HTTP 503" in rows[0].text, "its attempts show the subscriber's answers")
        shot(d, args.screenshots, "webhooks", 1280)
        shot(d, args.screenshots, "webhooks", 390)
        rows[0].find_element(By.XPATH, ".//button[normalize-space()='Retry now']").click()
        wait_for(d, lambda: "queued for another attempt" in d.page_source, "the retry is acknowledged")
        deadline = time.time() + 30
        while time.time() < deadline:
            d.get(f"{endpoint_url}?status=succeeded")
            if delivery in d.page_source:
                break
            time.sleep(1)
        else:
            fail(f"delivery {delivery} did not succeed after the retry")
        print(f"delivery {delivery} succeeded after a retry from the console")

        # Signing out ends the session.
        d.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
        d.get(f"{args.base}/console/jobs")
        expect("/console/sign-in" in d.current_url, "signed out")
    finally:
        d.quit()
    print("console browser check passed")


if __name__ == "__main__":
    main()
