// Compose: a suggested fix that moves the send time fills the form's
// "send at" field (in UTC, as the field's label says) and the live dry run
// runs again. No inline script: the CSP forbids it.
document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("button.apply-fix");
  if (!btn) return;
  const at = new Date(btn.dataset.scheduleAt);
  if (isNaN(at)) return;
  const field = document.getElementById("schedule_at");
  field.value = at.toISOString().slice(0, 16);
  field.dispatchEvent(new Event("change", { bubbles: true }));
  field.focus();
});
