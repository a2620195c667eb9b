// Writ console: the one script, embedded in the binary and served from /console/static/console.js
// (CSP `default-src 'self'`, so no inline script). It turns every form marked `data-confirm` into
// a native <dialog> asking the question with Confirm and Cancel before the form is sent. Without
// this script the same forms post straight away: every page works without JavaScript.
(function () {
  "use strict";
  var dialog = null;
  var question = null;
  var pending = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.setAttribute("aria-labelledby", "writ-confirm-question");
    question = document.createElement("p");
    question.id = "writ-confirm-question";
    var menu = document.createElement("menu");
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", function () {
      pending = null;
      dialog.close();
    });
    var confirm = document.createElement("button");
    confirm.type = "button";
    confirm.textContent = "Confirm";
    confirm.addEventListener("click", function () {
      var form = pending;
      pending = null;
      dialog.close();
      if (form) {
        // `submit()` sends the form without firing `submit` again.
        form.submit();
      }
    });
    menu.appendChild(cancel);
    menu.appendChild(confirm);
    dialog.appendChild(question);
    dialog.appendChild(menu);
    document.body.appendChild(dialog);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) {
      return;
    }
    if (typeof HTMLDialogElement !== "function") {
      return; // No <dialog>: the form posts as it would without the script.
    }
    event.preventDefault();
    if (!dialog) {
      build();
    }
    pending = form;
    question.textContent = form.getAttribute("data-confirm");
    dialog.showModal();
  });
})();
