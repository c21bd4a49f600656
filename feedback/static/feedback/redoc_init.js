// Starts Redoc on the API docs page (no inline script: the CSP allows none).
"use strict";
(function () {
  // Redoc's menu footer shows Redocly's logo from their CDN; the site loads nothing from elsewhere, so the
  // image gets an empty local one instead of a request the CSP would block.
  const remoteLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  const emptyImage = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";
  const local = (value) => (value === remoteLogo ? emptyImage : value);
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    return setAttribute.call(this, name, this instanceof HTMLImageElement && name === "src" ? local(value) : value);
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    ...src,
    set(value) {
      src.set.call(this, local(value));
    },
  });
  const container = document.getElementById("redoc-container");
  Redoc.init(container.dataset.schemaUrl, {}, container);
})();
