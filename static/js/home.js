// Home page: keep the map version badge current when a new version is published anywhere.
window.coeSocket("map", {event: (name, data) => {
  const badge = document.getElementById("map-version");
  if (name === "map.changed" && badge) badge.textContent = `v${data.version}`;
}});
