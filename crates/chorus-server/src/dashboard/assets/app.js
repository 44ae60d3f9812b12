// Live parts of a page: an element with data-stream (server-sent events
// saying what it shows changed) is refreshed on each change, without
// reloading the page: from data-live when it names a fragment, else from
// the same element of the page fetched again.
"use strict";
for (const section of document.querySelectorAll("[data-stream]")) {
  const stream = new EventSource(section.dataset.stream);
  stream.addEventListener("refresh", async () => {
    const answer = await fetch(section.dataset.live ?? location.href, { credentials: "same-origin" });
    // A session that ended sends the page to sign-in; the next full load
    // takes the user there, with this page to come back to.
    if (!answer.ok || answer.redirected) {
      stream.close();
      return;
    }
    const text = await answer.text();
    if (section.dataset.live) {
      section.innerHTML = text;
      return;
    }
    const fresh = new DOMParser().parseFromString(text, "text/html").getElementById(section.id);
    if (fresh) {
      section.innerHTML = fresh.innerHTML;
    }
  });
}
