// ID photo page: preview the chosen photo and show that the upload is being checked.
const input = document.getElementById("photo");
const preview = document.getElementById("preview");
const image = document.getElementById("preview-image");
const form = document.getElementById("document-form");
const submit = document.getElementById("document-submit");
const status = document.getElementById("document-status");
let previewUrl = null;

input.addEventListener("change", () => {
  const file = input.files && input.files[0];
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  if (!file) {
    preview.hidden = true;
    return;
  }
  if (file.type.startsWith("image/")) {
    previewUrl = URL.createObjectURL(file);
    image.src = previewUrl;
    preview.hidden = false;
  }
});

form.addEventListener("submit", () => {
  submit.disabled = true;
  status.textContent = submit.dataset.busy;
});
