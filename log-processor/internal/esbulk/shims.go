package esbulk

import (
	"io"
	"net/http"
	"strings"
)

// The calls shippers make before they send, each answered as an
// Elasticsearch 8 cluster with nothing to configure would: the version
// document (every client), the license (Filebeat and Logstash refuse a
// cluster without one), X-Pack's features (Logstash's ILM check), cluster
// health (Vector's health check), nodes (sniffing clients), and the
// templates, policies, pipelines, data streams, aliases and indices that
// Filebeat and Logstash look for and install: each one exists, and
// installing one is acknowledged and changes nothing. docs/sources.md
// lists them.
var shims = []struct {
	pattern string
	serve   func(w http.ResponseWriter, r *http.Request, token string)
}{
	{"GET /{$}", serveVersion}, // and HEAD, which gets no body
	{"GET /_license", serveLicense},
	{"GET /_xpack", serveXPack},
	{"GET /_cluster/health", serveHealth},
	{"GET /_cluster/health/{index}", serveHealth},
	{"GET /_nodes", serveNodes},
	{"GET /_nodes/{rest...}", serveNodes},

	{"GET /_index_template/{name}", exists(func(n string) any {
		return map[string]any{"index_templates": []any{map[string]any{"name": n,
			"index_template": map[string]any{"index_patterns": []string{n + "*"}, "composed_of": []string{}}}}}
	})},
	{"GET /_template/{name}", exists(func(n string) any {
		return map[string]any{n: map[string]any{"order": 0, "index_patterns": []string{n + "*"},
			"settings": map[string]any{}, "mappings": map[string]any{}, "aliases": map[string]any{}}}
	})},
	{"GET /_component_template/{name}", exists(func(n string) any {
		return map[string]any{"component_templates": []any{map[string]any{"name": n,
			"component_template": map[string]any{"template": map[string]any{}}}}}
	})},
	{"GET /_ilm/policy/{name}", exists(func(n string) any {
		return map[string]any{n: map[string]any{"version": 1, "policy": map[string]any{"phases": map[string]any{}}}}
	})},
	{"GET /_ingest/pipeline/{name}", exists(func(n string) any {
		return map[string]any{n: map[string]any{"description": "answered by log-processor: documents are stored as sent", "processors": []any{}}}
	})},
	{"GET /_data_stream/{name}", exists(func(n string) any {
		return map[string]any{"data_streams": []any{map[string]any{"name": n, "timestamp_field": map[string]any{"name": "@timestamp"},
			"indices": []any{}, "generation": 1, "status": "GREEN", "template": n}}}
	})},
	{"GET /_alias/{name}", exists(func(n string) any {
		return map[string]any{n + "-000001": map[string]any{"aliases": map[string]any{n: map[string]any{"is_write_index": true}}}}
	})},
	{"/{index}", serveIndex}, // HEAD: an index or alias exists; PUT: create one

	{"PUT /_index_template/{name}", acknowledge},
	{"POST /_index_template/{name}", acknowledge},
	{"PUT /_template/{name}", acknowledge},
	{"POST /_template/{name}", acknowledge},
	{"PUT /_component_template/{name}", acknowledge},
	{"PUT /_ilm/policy/{name}", acknowledge},
	{"PUT /_ingest/pipeline/{name}", acknowledge},
	{"PUT /_data_stream/{name}", acknowledge},
	{"PUT /_alias/{name}", acknowledge},
}

// clusterName names the one-node cluster the processor says it is.
const clusterName = "log-processor"

func serveVersion(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":         clusterName,
		"cluster_name": clusterName,
		"cluster_uuid": "bG9nLXByb2Nlc3Nvcg",
		"version": map[string]any{
			"number":                              Version,
			"build_flavor":                        "default",
			"build_type":                          "log-processor",
			"build_hash":                          "0000000000000000000000000000000000000000",
			"build_date":                          "2025-01-01T00:00:00.000000000Z",
			"build_snapshot":                      false,
			"lucene_version":                      "9.12.0",
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
}

// license is a basic license, active and without expiry, as a cluster
// that has never been given another one reports it.
var license = map[string]any{
	"status": "active", "uid": "00000000-0000-4000-8000-6c6f6770726f", "type": "basic",
	"issue_date_in_millis": 1735689600000, "max_nodes": 1000, "max_resource_units": nil,
	"issued_to": clusterName, "issuer": "elasticsearch", "start_date_in_millis": -1,
}

func serveLicense(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{"license": license})
}

func serveXPack(w http.ResponseWriter, _ *http.Request, _ string) {
	feature := map[string]any{"available": true, "enabled": true}
	writeJSON(w, http.StatusOK, map[string]any{
		"build":    map[string]any{"hash": "0000000", "date": "2025-01-01T00:00:00.000Z"},
		"license":  map[string]any{"uid": license["uid"], "type": "basic", "mode": "basic", "status": "active"},
		"features": map[string]any{"ilm": feature, "data_streams": feature},
		"tagline":  "You know, for X",
	})
}

func serveHealth(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_name": clusterName, "status": "green", "timed_out": false,
		"number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0,
		"relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
		"number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
		"active_shards_percent_as_number": 100.0,
	})
}

// serveNodes names the one node, at the address the client used, so that
// a sniffing client keeps using it.
func serveNodes(w http.ResponseWriter, r *http.Request, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"_nodes":       map[string]any{"total": 1, "successful": 1, "failed": 0},
		"cluster_name": clusterName,
		"nodes": map[string]any{"bG9nLXByb2Nlc3Nvcg": map[string]any{
			"name": clusterName, "version": Version, "roles": []string{"data", "ingest", "master"},
			"http": map[string]any{"publish_address": r.Host},
		}},
	})
}

// serveIndex answers HEAD of an index or alias (it exists) and PUT (it is
// created: Logstash's first rollover index). Other methods find nothing:
// the routes with a single segment that something serves (POST /ingest,
// GET /_license, ...) are more specific than this one.
func serveIndex(w http.ResponseWriter, r *http.Request, token string) {
	switch r.Method {
	case http.MethodHead:
		exists(nil)(w, r, token)
	case http.MethodPut:
		acknowledge(w, r, token)
	default:
		noHandler(w, r)
	}
}

// exists answers a GET of a named thing with doc(name), and a HEAD (or a
// nil doc) with 200 and no body: it exists, so shippers do not try to
// install it.
func exists(doc func(name string) any) func(w http.ResponseWriter, r *http.Request, token string) {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		if doc == nil || r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			return
		}
		writeJSON(w, http.StatusOK, doc(r.PathValue("name")))
	}
}

// maxShimBody bounds what is read (and thrown away) of a template's or a
// policy's body, so that the connection can be reused.
const maxShimBody = 4 << 20

// acknowledge answers an install as done, and changes nothing.
func acknowledge(w http.ResponseWriter, r *http.Request, _ string) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxShimBody))
	if name := r.PathValue("index"); name != "" {
		writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": strings.Trim(name, "<>")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
}

// noHandler answers a path nothing serves, in Elasticsearch's words.
func noHandler(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest, "illegal_argument_exception",
		"no handler found for uri ["+r.URL.Path+"] and method ["+r.Method+"] (the ingest listener's routes: docs/api.md)")
}
