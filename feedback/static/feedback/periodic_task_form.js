// The periodic-task form (django-celery-beat): under the crontab field, say in words when the chosen crontab runs.
// django-celery-beat ships this inline; the site's CSP runs scripts from its own files only.
"use strict";
(function () {
  const data = document.getElementById("readable-crontabs");
  const field = document.querySelector(".field-crontab");
  const select = document.getElementById("id_crontab");
  if (!data || !field || !select) {
    return;
  }
  const readable = JSON.parse(data.textContent);
  const help = field.querySelector(".help");
  const original = help ? help.textContent : "";
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) {
    translation.hidden = true;
  }
  const update = () => {
    if (!help) {
      return;
    }
    const words = readable[select.value];
    help.textContent = words ? `${original} Translation: ${words}` : original;
  };
  select.addEventListener("change", update);
  update();
})();
