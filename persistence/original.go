// This file reads the entries of state files written by the original daemon
// (its serde derives, SPEC §2): it recognises an entry by shapes only that
// daemon writes and rewrites it into shipote's shapes before decoding.
// docs/design.md ("Files of the original daemon") records the mapping.

package persistence

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strings"

	"github.com/shipote/shipote/messages"
)

// Variant names of the original's unit enums, by the shipote value they map
// to. serde writes a unit variant as its name.
var (
	originalOnExit       = map[string]string{"Keep": "keep", "Reap": "reap"}
	originalQuotaEnforce = map[string]string{"Off": "off", "Warn": "warn", "Kill": "kill"}
	originalSlowConsumer = map[string]string{"Block": "block", "Drop": "drop"}
	originalRestartOn    = map[string]string{"Failure": "failure", "OnFailure": "failure", "Always": "always"}
)

// translateOriginal returns the entry raw of section rewritten into
// shipote's shapes when it has a shape only the original daemon writes, and
// whether it did. Anything it does not understand is left in place, for the
// decoder to keep as an unknown member (Extra) or to refuse.
func translateOriginal(section string, raw json.RawMessage) (json.RawMessage, bool) {
	if !mayBeOriginal(raw) || messages.HasDuplicateKey(raw) {
		// A duplicate key is refused by the decoder, translated or not.
		return raw, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var entry map[string]any
	if dec.Decode(&entry) != nil || entry == nil {
		return raw, false
	}
	spec, _ := entry["spec"].(map[string]any)
	switch section {
	case SectionWorkspaces:
		if !originalWorkspace(entry, spec) {
			return raw, false
		}
		if spec != nil {
			translateWorkspaceSpec(spec)
		}
		if h, ok := entry["stats_history"].([]any); ok {
			for _, s := range h {
				if s, ok := s.(map[string]any); ok {
					dropNulls(s)
					s["source"] = "persisted"
				}
			}
		}
	default:
		if spec == nil || !originalPipeline(spec) {
			return raw, false
		}
		translatePipelineSpec(spec)
	}
	out, err := json.Marshal(entry)
	if err != nil {
		return raw, false
	}
	return out, true
}

// mayBeOriginal is a quick test on the bytes that rules out most shipote
// entries without parsing them.
func mayBeOriginal(raw []byte) bool {
	for _, marker := range [][]byte{
		[]byte(`"ttl"`), []byte(`"Keep"`), []byte(`"Reap"`), []byte(`"Off"`), []byte(`"Warn"`),
		[]byte(`"Kill"`), []byte(`"Native"`), []byte(`"OneShot"`), []byte(`"Restart"`),
		[]byte(`"flows"`), []byte(`"Block"`), []byte(`"Drop"`), []byte("null"),
	} {
		if bytes.Contains(raw, marker) {
			return true
		}
	}
	// A sample without a source, env or an edge written as a list.
	return bytes.Count(raw, []byte(`"uptime_ms"`)) > bytes.Count(raw, []byte(`"source"`)) ||
		memberIsList(raw, `"env"`) || memberIsList(raw, `"edges"`, '[')
}

// memberIsList reports whether some member key of raw has a value starting
// with '[' followed, after white space, by each byte of then.
func memberIsList(raw []byte, key string, then ...byte) bool {
	for rest := raw; ; {
		i := bytes.Index(rest, []byte(key))
		if i < 0 {
			return false
		}
		rest = rest[i+len(key):]
		v := bytes.TrimLeft(rest, " \t\r\n")
		if len(v) == 0 || v[0] != ':' {
			continue
		}
		v = bytes.TrimLeft(v[1:], " \t\r\n")
		if len(v) == 0 || v[0] != '[' {
			continue
		}
		ok := true
		for _, c := range then {
			v = bytes.TrimLeft(v[1:], " \t\r\n")
			if len(v) == 0 || v[0] != c {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
}

// originalWorkspace reports whether a workspace entry has a shape only the
// original daemon writes.
func originalWorkspace(entry, spec map[string]any) bool {
	if h, ok := entry["stats_history"].([]any); ok {
		for _, s := range h {
			s, ok := s.(map[string]any)
			if !ok {
				continue
			}
			if _, has := s["source"]; !has {
				return true // PersistedStats has no source
			}
			for _, v := range s {
				if v == nil {
					return true // Option fields written as null
				}
			}
		}
	}
	if spec == nil {
		return false
	}
	if _, has := spec["ttl"]; has {
		return true
	}
	if isVariant(spec["on_exit"], originalOnExit) || isVariant(spec["quota_enforce"], originalQuotaEnforce) {
		return true
	}
	if p, ok := spec["permissions"].(map[string]any); ok {
		if _, isList := p["env"].([]any); isList {
			return true
		}
	}
	return false
}

// originalPipeline reports whether a pipeline spec has a shape only the
// original daemon writes.
func originalPipeline(spec map[string]any) bool {
	if d, ok := spec["discern"].(map[string]any); ok && isVariant(d["slow_consumer"], originalSlowConsumer) {
		return true
	}
	if edges, ok := spec["edges"].([]any); ok {
		for _, e := range edges {
			if _, isList := e.([]any); isList {
				return true
			}
		}
	}
	nodes, _ := spec["nodes"].([]any)
	for _, n := range nodes {
		n, ok := n.(map[string]any)
		if !ok {
			continue
		}
		if _, has := n["flows"]; has {
			return true
		}
		if p, ok := n["payload"].(map[string]any); ok {
			if _, has := p["Native"]; has {
				return true
			}
		}
		switch s := n["supervision"].(type) {
		case string:
			if s == "OneShot" {
				return true
			}
		case map[string]any:
			if _, has := s["Restart"]; has {
				return true
			}
		}
	}
	return false
}

func isVariant(v any, variants map[string]string) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	_, ok = variants[s]
	return ok
}

// mapVariant replaces m[key] by the shipote value of its variant name.
func mapVariant(m map[string]any, key string, variants map[string]string) {
	if s, ok := m[key].(string); ok {
		if v, ok := variants[s]; ok {
			m[key] = v
		}
	}
}

// dropNulls removes the members of m whose value is null: serde writes an
// Option that is None as null, shipote leaves the member out.
func dropNulls(m map[string]any) {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
}

// dropEmpty removes the members keys of m whose value is an empty list or
// object: serde writes an empty Vec or map, shipote leaves the member out
// (both read as empty).
func dropEmpty(m map[string]any, keys ...string) {
	for _, k := range keys {
		switch v := m[k].(type) {
		case []any:
			if len(v) == 0 {
				delete(m, k)
			}
		case map[string]any:
			if len(v) == 0 {
				delete(m, k)
			}
		}
	}
}

func translateWorkspaceSpec(spec map[string]any) {
	dropNulls(spec)
	if ttl, has := spec["ttl"]; has {
		if ms, ok := durationMs(ttl); ok {
			if _, set := spec["ttl_ms"]; !set {
				spec["ttl_ms"] = ms
			}
			delete(spec, "ttl")
		}
	}
	mapVariant(spec, "on_exit", originalOnExit)
	mapVariant(spec, "quota_enforce", originalQuotaEnforce)
	dropEmpty(spec, "flow_dirs")
	if soma, ok := spec["soma"].(map[string]any); ok {
		dropNulls(soma)
	}
	if p, ok := spec["permissions"].(map[string]any); ok {
		dropNulls(p)
		if env, ok := p["env"].([]any); ok {
			if m, ok := pairsToMap(env); ok {
				p["env"] = m
			}
		}
		dropEmpty(p, "allow_exec", "env")
	}
}

func translatePipelineSpec(spec map[string]any) {
	dropNulls(spec)
	if d, ok := spec["discern"].(map[string]any); ok {
		dropNulls(d)
		mapVariant(d, "slow_consumer", originalSlowConsumer)
	}
	dropEmpty(spec, "edges")
	if edges, ok := spec["edges"].([]any); ok {
		for i, e := range edges {
			if pair, ok := e.([]any); ok && len(pair) == 2 {
				from, ok1 := pair[0].(string)
				to, ok2 := pair[1].(string)
				if ok1 && ok2 {
					edges[i] = map[string]any{"from": from, "to": to}
				}
			}
		}
	}
	nodes, _ := spec["nodes"].([]any)
	for _, n := range nodes {
		n, ok := n.(map[string]any)
		if !ok {
			continue
		}
		dropNulls(n)
		if soma, ok := n["soma"].(map[string]any); ok {
			dropNulls(soma)
		}
		if p, ok := n["payload"].(map[string]any); ok {
			if native, ok := p["Native"].(map[string]any); ok {
				if _, clash := p["native"]; !clash {
					delete(p, "Native")
					p["native"] = native
				}
			}
			if native, ok := p["native"].(map[string]any); ok {
				dropNulls(native)
				if envp, ok := native["envp"].([]any); ok {
					native["envp"] = pairsToEntries(envp)
				}
				dropEmpty(native, "argv", "envp")
			}
		}
		switch s := n["supervision"].(type) {
		case string:
			if s == "OneShot" {
				// A node runs once per run; the pipeline restarts
				// whole. OneShot is what shipote does: nothing to keep.
				delete(n, "supervision")
			}
		case map[string]any:
			// A per-node restart policy has no place in a shipote
			// pipeline: it stays as an unknown member, in shipote's
			// spelling so that a reader of the file recognises it.
			if r, ok := s["Restart"].(map[string]any); ok && len(s) == 1 {
				dropNulls(r)
				mapVariant(r, "on", originalRestartOn)
				n["supervision"] = map[string]any{"restart": r}
			}
		}
	}
}

// durationMs reads serde's Duration, {"secs": S, "nanos": N}, as whole
// milliseconds rounded up, at least 1 (a zero TTL expired at once; 0 would
// mean no TTL). ok is false for any other shape.
func durationMs(v any) (int64, bool) {
	d, ok := v.(map[string]any)
	if !ok || len(d) != 2 {
		return 0, false
	}
	secs, ok1 := wholeNumber(d["secs"])
	nanos, ok2 := wholeNumber(d["nanos"])
	if !ok1 || !ok2 || secs.Sign() < 0 || nanos.Sign() < 0 || nanos.Cmp(big.NewInt(1e9)) >= 0 {
		return 0, false
	}
	ns := new(big.Int).Mul(secs, big.NewInt(1e9))
	ns.Add(ns, nanos)
	ms, rem := new(big.Int).QuoRem(ns, big.NewInt(1e6), new(big.Int))
	if rem.Sign() > 0 {
		ms.Add(ms, big.NewInt(1))
	}
	if !ms.IsInt64() {
		return math.MaxInt64, true
	}
	if ms.Int64() == 0 {
		return 1, true
	}
	return ms.Int64(), true
}

// wholeNumber reads a JSON integer of any size.
func wholeNumber(v any) (*big.Int, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return nil, false
	}
	return new(big.Int).SetString(string(n), 10)
}

// pairsToMap turns serde's list of [key, value] string pairs into an
// object. ok is false for any other shape.
func pairsToMap(list []any) (map[string]any, bool) {
	m := make(map[string]any, len(list))
	for _, e := range list {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			return nil, false
		}
		k, ok1 := pair[0].(string)
		v, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
	}
	return m, true
}

// pairsToEntries turns [key, value] string pairs of a list into
// "key=value" entries, leaving every other element as it is.
func pairsToEntries(list []any) []any {
	for i, e := range list {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		k, ok1 := pair[0].(string)
		v, ok2 := pair[1].(string)
		if ok1 && ok2 {
			list[i] = k + "=" + v
		}
	}
	return list
}

// looksOriginal reports whether a state decoded on the one-pass path has a
// value only the original daemon writes (a variant name where shipote
// writes lower case, a sample without a source); such a state is decoded
// entry by entry instead, so that those entries are translated.
func looksOriginal(st *State) bool {
	for i := range st.Workspaces {
		w := &st.Workspaces[i]
		if _, ok := originalOnExit[string(w.Spec.OnExit)]; ok {
			return true
		}
		if _, ok := originalQuotaEnforce[string(w.Spec.QuotaEnforce)]; ok {
			return true
		}
		for j := range w.StatsHistory {
			if w.StatsHistory[j].Source == "" {
				return true
			}
		}
	}
	for i := range st.SavedPipelines {
		if originalSpecValue(&st.SavedPipelines[i].Spec) {
			return true
		}
	}
	for i := range st.LivePipelines {
		if originalSpecValue(&st.LivePipelines[i].Spec) {
			return true
		}
	}
	return false
}

func originalSpecValue(p *messages.PipelineSpec) bool {
	_, ok := originalSlowConsumer[string(p.Discern.SlowConsumer)]
	return ok
}
