// Reading HAL (application/hal+json) resources: links, actions and embedded collections.

/** The link object `{href, method?, templated?}` for `rel`, or null when the resource does not offer it. */
export function link(resource, rel) {
  const links = resource && resource._links;
  if (!links) return null;
  let value = links[rel];
  if (value === undefined && links.actions && typeof links.actions === "object") value = links.actions[rel];
  if (Array.isArray(value)) value = value[0];
  if (typeof value === "string") return { href: value };
  return value && typeof value.href === "string" ? value : null;
}

/** The href for `rel`, or null. */
export function href(resource, rel) {
  const l = link(resource, rel);
  return l ? l.href : null;
}

/** The HTTP method an action link asks for (defaults to `fallback`). */
export function method(linkObject, fallback = "GET") {
  return (linkObject && typeof linkObject.method === "string" && linkObject.method.toUpperCase()) || fallback;
}

/** Items of a HAL collection: `_embedded.<name>`, or the first array in `_embedded`; plain lists pass through. */
export function items(collection, name) {
  if (Array.isArray(collection)) return collection;
  if (!collection) return [];
  const embedded = collection._embedded;
  if (embedded && typeof embedded === "object") {
    if (name && Array.isArray(embedded[name])) return embedded[name];
    const first = Object.values(embedded).find(Array.isArray);
    if (first) return first;
  }
  if (Array.isArray(collection.results)) return collection.results;
  return [];
}

/** Expand a simple RFC 6570 level-1 template such as "/api/v3/results/{poll}/". */
export function expand(template, values) {
  return template.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(values[name] ?? ""));
}

/**
 * `href` with query parameters set (empty values removed). Works on relative gateway paths and
 * keeps them relative.
 */
export function withQuery(hrefValue, params) {
  const url = new URL(hrefValue, "http://gateway.invalid");
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") url.searchParams.delete(key);
    else url.searchParams.set(key, String(value));
  }
  const local = url.origin === "http://gateway.invalid";
  return local ? url.pathname + url.search : url.toString();
}

/** The trailing id of a resource's self link (".../polls/<id>/"), used for readable client routes. */
export function idFromHref(hrefValue) {
  if (!hrefValue) return null;
  const path = new URL(hrefValue, "http://gateway.invalid").pathname.replace(/\/+$/, "");
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || null;
}
