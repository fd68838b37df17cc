// ID photo page: "Use this photo" only once a photo is chosen (without this script it is always there),
// a preview small enough to keep that button on a phone's screen, and that the upload is being checked.
const input = document.getElementById("photo");
const choose = document.getElementById("choose");
const preview = document.getElementById("preview");
const image = document.getElementById("preview-image");
const form = document.getElementById("document-form");
const submit = document.getElementById("document-submit");
const status = document.getElementById("document-status");
const chooseText = choose.textContent;
let previewUrl = null;

const showSubmit = () => submit.scrollIntoView({ block: "nearest" });

function chosen() {
  const file = input.files && input.files[0];
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  submit.hidden = !file;
  choose.textContent = file ? choose.dataset.again : chooseText;
  if (!file) {
    preview.hidden = true;
    return;
  }
  if (file.type.startsWith("image/")) {
    previewUrl = URL.createObjectURL(file);
    image.addEventListener("load", showSubmit, { once: true });
    image.src = previewUrl;
    preview.hidden = false;
  } else {
    preview.hidden = true;
    showSubmit();
  }
}

input.addEventListener("change", chosen);
chosen(); // a photo the browser kept (back button) counts as chosen

form.addEventListener("submit", () => {
  submit.disabled = true;
  status.textContent = submit.dataset.busy;
});
