{{/*
The one template every Pinstack component is rendered from. Each define takes
  dict "root" $ "name" <component> "c" <component values merged over .Values.defaults>
and components.yaml calls them for every enabled component. A gRPC component ("kind: grpc")
serves gRPC on ports.grpc and metrics on ports.metrics; the gateway ("kind: http") serves HTTP,
/healthz, /readyz and /metrics on ports.http.
*/}}

{{- define "pinstack.component.env" -}}
{{- $root := .root -}}
{{- $c := .c -}}
- name: PINSTACK_COMPONENT
  value: {{ .name | quote }}
{{- if eq $c.kind "grpc" }}
- name: PINSTACK_GRPC_HOST
  value: "0.0.0.0"
- name: PINSTACK_GRPC_PORT
  value: {{ $root.Values.ports.grpc | quote }}
- name: PINSTACK_METRICS_PORT
  value: {{ $root.Values.ports.metrics | quote }}
{{- else }}
- name: PINSTACK_HTTP_HOST
  value: "0.0.0.0"
- name: PINSTACK_HTTP_PORT
  value: {{ $root.Values.ports.http | quote }}
- name: PINSTACK_TRUSTED_PROXIES
  value: {{ toJson (default (list) $c.trustedProxies) | quote }}
{{- end }}
{{- range $upstream := list "auth" "user" "post" "relation" "notification" }}
{{- if ne $upstream $.name }}
- name: PINSTACK_{{ upper $upstream }}_ADDR
  value: {{ printf "%s:%v" (include "pinstack.componentName" (dict "root" $root "name" $upstream)) $root.Values.ports.grpc | quote }}
{{- end }}
{{- end }}
- name: PINSTACK_LOG_FORMAT
  value: json
- name: PINSTACK_EVENT_TRANSPORT
  value: kafka
- name: PINSTACK_REDIS_URL
  value: {{ $root.Values.config.redisUrl | quote }}
- name: PINSTACK_KAFKA_BOOTSTRAP_SERVERS
  value: {{ $root.Values.config.kafkaBootstrapServers | quote }}
{{ include "pinstack.connectivity.env" . }}
- name: PINSTACK_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
{{- with $root.Values.config.otlpEndpoint }}
- name: PINSTACK_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if $c.database }}
- name: PINSTACK_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "pinstack.databaseSecret" . }}
      key: {{ $root.Values.secrets.database.key }}
{{- end }}
- name: PINSTACK_INTERNAL_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "pinstack.internalTokenSecret" $root }}
      key: {{ $root.Values.secrets.internalToken.key }}
{{- if $c.signingKey }}
- name: PINSTACK_AUTH_SIGNING_KEY_FILE
  value: /var/run/secrets/pinstack/jwt/{{ $root.Values.secrets.signingKey.key }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pinstack.component.deployment" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $fullname := include "pinstack.componentName" . -}}
{{- /* SIGTERM comes after preStop; then the app drains: the gateway's HTTP server for up to
10 s, a service's gRPC server for 5 s and its outbox relay for 10 s. The grace period must cover
both, or the kubelet kills the process mid-drain. */ -}}
{{- $drain := ternary 15 10 (eq $c.kind "grpc") -}}
{{- $preStop := int $c.preStopSleepSeconds -}}
{{- if le (int $c.terminationGracePeriodSeconds) (add $preStop $drain) -}}
{{- fail (printf "components.%s: terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + the app's graceful shutdown (%d s)" .name (int $c.terminationGracePeriodSeconds) $preStop $drain) -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "pinstack.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "pinstack.componentLabels" . | nindent 8 }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "pinstack.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $c.podSecurityContext | nindent 8 }}
      {{- if and $c.database $root.Values.migrations.waitForSchema }}
      initContainers:
        - name: wait-for-schema
          image: {{ include "pinstack.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          # Blocks until `pinstack migrate check` sees the schema at this image's Alembic head or
          # at a newer release's descendant of it (after a rollback); the operator's migration
          # Job upgrades it. Gives up after timeoutSeconds.
          command: ["/bin/sh", "-c"]
          args:
            - |
              deadline=$(( $(date +%s) + {{ $root.Values.migrations.timeoutSeconds }} ))
              until pinstack migrate check --service {{ .name }}; do
                if [ "$(date +%s)" -ge "$deadline" ]; then
                  echo "schema of {{ .name }} not migrated after {{ $root.Values.migrations.timeoutSeconds }}s" >&2
                  exit 1
                fi
                sleep 5
              done
          env:
            - name: PINSTACK_LOG_FORMAT
              value: json
            - name: PINSTACK_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "pinstack.databaseSecret" . }}
                  key: {{ $root.Values.secrets.database.key }}
          securityContext:
            {{- toYaml $c.securityContext | nindent 12 }}
          resources:
            requests:
              cpu: 10m
              memory: 96Mi
            limits:
              memory: 256Mi
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- include "pinstack.connectivity.postgresMounts" . | nindent 12 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "pinstack.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["serve", {{ .name | quote }}]
          env:
            {{- include "pinstack.component.env" . | nindent 12 }}
          ports:
          {{- if eq $c.kind "grpc" }}
            - name: grpc
              containerPort: {{ $root.Values.ports.grpc }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $root.Values.ports.metrics }}
              protocol: TCP
          {{- else }}
            - name: http
              containerPort: {{ $root.Values.ports.http }}
              protocol: TCP
          {{- end }}
          {{- if gt $preStop 0 }}
          # Keep serving while endpoint controllers, kube-proxy and ingresses stop sending new
          # connections to this terminating pod; SIGTERM (and the drain) comes after.
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $preStop }}
          {{- end }}
          {{- if eq $c.kind "grpc" }}
          startupProbe:
            grpc:
              port: {{ $root.Values.ports.grpc }}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            grpc:
              port: {{ $root.Values.ports.grpc }}
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            grpc:
              port: {{ $root.Values.ports.grpc }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          {{- else }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          {{- end }}
          securityContext:
            {{- toYaml $c.securityContext | nindent 12 }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $c.signingKey }}
            - name: signing-key
              mountPath: /var/run/secrets/pinstack/jwt
              readOnly: true
            {{- end }}
            {{- include "pinstack.connectivity.mounts" . | nindent 12 }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $c.signingKey }}
        - name: signing-key
          secret:
            secretName: {{ include "pinstack.signingKeySecret" $root }}
            defaultMode: 0440
            items:
              - key: {{ $root.Values.secrets.signingKey.key }}
                path: {{ $root.Values.secrets.signingKey.key }}
        {{- end }}
        {{- include "pinstack.connectivity.volumes" . | nindent 8 }}
      {{- if $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml $c.topologySpreadConstraints | nindent 8 }}
      {{- else if $c.spreadAcrossNodes }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "pinstack.selectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "pinstack.component.service" -}}
{{- $root := .root -}}
{{- $c := .c -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "pinstack.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
spec:
  type: {{ dig "service" "type" "ClusterIP" $c }}
  selector:
    {{- include "pinstack.selectorLabels" . | nindent 4 }}
  ports:
  {{- if eq $c.kind "grpc" }}
    - name: grpc
      port: {{ $root.Values.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ $root.Values.ports.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
  {{- else }}
    - name: http
      port: {{ $root.Values.ports.http }}
      targetPort: http
      protocol: TCP
      appProtocol: http
      {{- with dig "service" "nodePort" nil $c }}
      nodePort: {{ . }}
      {{- end }}
  {{- end }}
{{- end -}}

{{- define "pinstack.component.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "pinstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .c.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "pinstack.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "pinstack.component.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "pinstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "pinstack.componentName" . }}
  minReplicas: {{ .c.autoscaling.minReplicas }}
  maxReplicas: {{ .c.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .c.autoscaling.targetCPUUtilizationPercentage }}
{{- end -}}

{{- define "pinstack.component.networkpolicy" -}}
{{- $root := .root -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "pinstack.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "pinstack.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
  {{- if eq .c.kind "grpc" }}
    - ports:
        - port: grpc
          protocol: TCP
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "pinstack.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
    - ports:
        - port: metrics
          protocol: TCP
      {{- with $root.Values.networkPolicy.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- else }}
    - ports:
        - port: http
          protocol: TCP
      {{- with $root.Values.networkPolicy.gatewayFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- end }}
{{- end -}}

{{- define "pinstack.component.servicemonitor" -}}
{{- $root := .root -}}
{{- with $root.Values.monitoring.serviceMonitor }}
{{- /* The Prometheus Operator skips such a monitor with only an Event: no target, no alert. */ -}}
{{- if gt (include "pinstack.durationMs" .scrapeTimeout | int) (include "pinstack.durationMs" .interval | int) }}
{{- fail (printf "monitoring.serviceMonitor.scrapeTimeout (%s) must not exceed interval (%s)" .scrapeTimeout .interval) }}
{{- end }}
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "pinstack.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pinstack.componentLabels" . | nindent 4 }}
    {{- with $root.Values.monitoring.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/component
  targetLabels: [app.kubernetes.io/part-of]
  selector:
    matchLabels:
      {{- include "pinstack.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ $root.Release.Namespace }}]
  endpoints:
    - port: {{ if eq .c.kind "grpc" }}metrics{{ else }}http{{ end }}
      path: /metrics
      interval: {{ $root.Values.monitoring.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.monitoring.serviceMonitor.scrapeTimeout }}
{{- end -}}
