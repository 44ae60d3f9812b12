// Live parts of a page: an element with data-stream (server-sent events
// saying what it shows changed) is refreshed on each change, without
// reloading the page: from data-live when it names a fragment, else from
// the same element of the page fetched again.
//
// The stream compares against what it saw when it opened, so a change made
// between this page's rendering and the stream's opening (or while a lost
// stream reconnects) would never be announced: each time the stream opens,
// the part is fetched once more, and replaced only if it changed.
"use strict";
for (const section of document.querySelectorAll("[data-stream]")) {
  const stream = new EventSource(section.dataset.stream);
  const refresh = async () => {
    const answer = await fetch(section.dataset.live ?? location.href, { credentials: "same-origin" });
    // A session that ended sends the page to sign-in; the next full load
    // takes the user there, with this page to come back to.
    if (!answer.ok || answer.redirected) {
      stream.close();
      return;
    }
    const text = await answer.text();
    const html = section.dataset.live
      ? text
      : new DOMParser().parseFromString(text, "text/html").getElementById(section.id)?.innerHTML;
    if (html !== undefined && html !== section.innerHTML) {
      section.innerHTML = html;
    }
  };
  stream.addEventListener("open", refresh);
  stream.addEventListener("refresh", refresh);
}
