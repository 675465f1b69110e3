{{/* The release's base name: the release name, or RELEASE-calld. */}}
{{- define "calld.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name -}}
{{- end -}}
{{- end -}}

{{/* The labels every object carries. */}}
{{- define "calld.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The name of the Secret with api_id and api_hash. */}}
{{- define "calld.secretName" -}}
{{- if .Values.apiCredentials.existingSecret -}}
{{- .Values.apiCredentials.existingSecret -}}
{{- else -}}
{{- printf "%s-api" (include "calld.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
calld.check fails the rendering, with a message naming the value, when the
values cannot make a working release. It renders nothing. Every template
includes it first: whichever Helm renders first fails with its message.
(helm lint only logs a fail: chartest's TestBadValues renders.)
*/}}
{{- define "calld.check" -}}
{{- $v := .Values -}}
{{- if not $v.accounts -}}
{{- fail "calld: accounts is empty: list at least one account, e.g. --set 'accounts[0].name=alice'" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $a := $v.accounts -}}
{{- if not (kindIs "map" $a) -}}
{{- fail (printf "calld: accounts[%d] is not a map with a name (accounts: [{name: alice}])" $i) -}}
{{- end -}}
{{- $name := toString (default "" $a.name) -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "calld: accounts[%d].name %q is not a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit" $i $name) -}}
{{- end -}}
{{- $sts := printf "%s-%s" (include "calld.fullname" $) $name -}}
{{- if gt (len $sts) 52 -}}
{{- fail (printf "calld: accounts[%d].name %q: the StatefulSet name %q is longer than 52 characters (the pods' controller-revision-hash label must fit in 63)" $i $name $sts) -}}
{{- end -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "calld: accounts[%d].name %q appears twice: one account, one daemon" $i $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- $tg := (default dict (default dict $a.config).telegram) -}}
{{- if or (hasKey $tg "api_id") (hasKey $tg "api_hash") -}}
{{- fail (printf "calld: accounts[%d].config.telegram: api_id and api_hash come from apiCredentials (a Secret), not from the config" $i) -}}
{{- end -}}
{{- end -}}
{{- $tg := (default dict (default dict $v.config).telegram) -}}
{{- if or (hasKey $tg "api_id") (hasKey $tg "api_hash") -}}
{{- fail "calld: config.telegram: api_id and api_hash come from apiCredentials (a Secret), not from the config" -}}
{{- end -}}
{{- $c := $v.apiCredentials -}}
{{- if and (not $c.existingSecret) (or (not $c.apiId) (not $c.apiHash)) -}}
{{- fail "calld: apiCredentials: set existingSecret (a Secret with api_id and api_hash), or both apiId and apiHash" -}}
{{- end -}}
{{- end -}}

{{/*
calld.config is one account's calld.toml: the chart's config, the
account's config merged over it, and the keys the chart owns. Called with
(dict "root" $ "account" $a).
*/}}
{{- define "calld.config" -}}
{{- $root := .root -}}
{{- $a := .account -}}
{{- $cfg := mergeOverwrite (deepCopy (default dict $root.Values.config)) (deepCopy (default dict $a.config)) -}}
{{- $tg := default dict $cfg.telegram -}}
{{- $_ := set $tg "account" $a.name -}}
{{- $_ := set $cfg "telegram" $tg -}}
{{- $st := default dict $cfg.state -}}
{{- $_ := set $st "path" "/var/lib/calld/calld.db" -}}
{{- $_ := set $cfg "state" $st -}}
{{- $ctl := default dict $cfg.control -}}
{{- $_ := set $ctl "socket" "/run/calld/calld.sock" -}}
{{- $_ := set $cfg "control" $ctl -}}
{{- $m := default dict $cfg.metrics -}}
{{- if $root.Values.metrics.enabled -}}
{{- $_ := set $m "listen" (printf ":%d" (int $root.Values.metrics.port)) -}}
{{- else -}}
{{- $_ := set $m "listen" "" -}}
{{- end -}}
{{- $_ := set $cfg "metrics" $m -}}
# calld.toml of account {{ $a.name }}, rendered by the calld Helm chart.
{{- range $table := keys $cfg | sortAlpha }}
{{- $t := get $cfg $table }}
{{- if not (kindIs "map" $t) }}
{{- fail (printf "calld: config.%s is not a table: calld's config has tables ([telegram], [policy], ...) of keys" $table) }}
{{- end }}

[{{ $table }}]
{{- range $k := keys $t | sortAlpha }}
{{ $k }} = {{ include "calld.tomlValue" (get $t $k) }}
{{- end }}
{{- end }}
{{ end -}}

{{/*
calld.tomlValue is one TOML value: a string (as a JSON string, which is a
TOML basic string), an integer (YAML numbers reach the template as float64:
a whole number is written without a fraction, as calld's integer keys
need), a boolean, an array or an inline table (telegram.dc_options).
*/}}
{{- define "calld.tomlValue" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 .) (float64 (int64 .)) -}}{{- int64 . -}}{{- else -}}{{- . -}}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $e := . -}}{{- if $i -}}, {{ end -}}{{- include "calld.tomlValue" $e -}}{{- end -}}]
{{- else if kindIs "map" . -}}
{{- $m := . -}}
{{ "{" }}{{- range $i, $k := keys $m | sortAlpha -}}{{- if $i -}}, {{ end -}}{{ $k }} = {{ include "calld.tomlValue" (get $m $k) }}{{- end -}}{{ "}" }}
{{- else if kindIs "invalid" . -}}
{{- fail "calld: config: a key without a value (null); leave the key out for calld's default" -}}
{{- else -}}
{{- fail (printf "calld: config: a value of unsupported type %s" (kindOf .)) -}}
{{- end -}}
{{- end -}}
