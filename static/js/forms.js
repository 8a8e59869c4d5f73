// Form behaviour the templates used to inline (onsubmit="return confirm(…)", onchange="this.form.submit()").
// The Content-Security-Policy allows scripts from our static files only, so inline handlers would
// never run: forms say what they need with data attributes instead, and this file does it.
//   <form data-confirm="Remove …?">   asks before submitting; Cancel keeps the page as it is.
//   <select data-autosubmit>           submits its form when another option is chosen.
//   <form data-submit-on-load>         submits itself once, when the page has loaded (on to Checkout).
//   <button data-copy="element-id">    copies that element's text (an embed snippet) and says so.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && "autosubmit" in field.dataset && field.form) {
    field.form.submit();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-submit-on-load]")) form.requestSubmit();
});

document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
  const source = button && document.getElementById(button.dataset.copy);
  if (!source) return;
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(source.textContent);
    button.textContent = "Copied";
  } catch {
    // No clipboard (an insecure page, or permission refused): select it, for Ctrl-C.
    window.getSelection().selectAllChildren(source);
    button.textContent = "Selected: press Ctrl-C";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});
