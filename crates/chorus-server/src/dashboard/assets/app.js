// Live parts of a page: a section with data-live (where its fresh HTML is)
// and data-stream (server-sent events saying it changed) is refetched on
// each change, without reloading the page.
"use strict";
for (const section of document.querySelectorAll("[data-live][data-stream]")) {
  const stream = new EventSource(section.dataset.stream);
  stream.addEventListener("refresh", async () => {
    const answer = await fetch(section.dataset.live, { credentials: "same-origin" });
    // A session that ended sends the page to sign-in; the next full load
    // takes the user there, with this page to come back to.
    if (!answer.ok || answer.redirected) {
      stream.close();
      return;
    }
    section.innerHTML = await answer.text();
  });
}
