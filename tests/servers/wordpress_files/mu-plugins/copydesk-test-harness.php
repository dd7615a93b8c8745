<?php
/*
 * Test-only must-use plugin installed by tests/servers/wordpress.py into its private copy of
 * WordPress. Never meant for a real site. It reads COPYDESK_TEST_CONTROL, a JSON file the tests write:
 *   {"faults": [{"status": 500, "remaining": 2, "phase": "before"|"after", "method": "POST",
 *                "route": "#^/wp/v2/posts#", "retry_after": 2, "served": 0}],
 *    "app_passwords": false}
 * phase "before": the request is answered with the error instead of running;
 * phase "after": the request runs (a post is written) and its answer is replaced by the error,
 * as when the answer is lost on the way back.
 * "delay": seconds to sleep before answering (e.g. to kill the client while WordPress holds the
 * answer); with "status": 0 the real answer is then sent unchanged.
 * Every REST request is appended to COPYDESK_TEST_REQUESTS as one JSON line {m, route, status, ms}
 * (ms: time spent in PHP so far, from the request's start).
 */

function copydesk_test_take_fault(string $phase, WP_REST_Request $request) {
    $file = COPYDESK_TEST_CONTROL;
    if (!file_exists($file)) {
        return null;
    }
    $fh = fopen($file, 'c+');
    flock($fh, LOCK_EX);
    $control = json_decode(stream_get_contents($fh) ?: '{}', true) ?: [];
    $taken = null;
    foreach ($control['faults'] ?? [] as $i => $rule) {
        if (($rule['remaining'] ?? 0) <= 0 || ($rule['phase'] ?? 'before') !== $phase) continue;
        if (!empty($rule['method']) && strcasecmp($rule['method'], $request->get_method()) !== 0) continue;
        if (!empty($rule['route']) && !preg_match($rule['route'], $request->get_route())) continue;
        $control['faults'][$i]['remaining'] = $rule['remaining'] - 1;
        $control['faults'][$i]['served'] = ($rule['served'] ?? 0) + 1;
        $taken = $rule;
        break;
    }
    if ($taken) {
        ftruncate($fh, 0);
        rewind($fh);
        fwrite($fh, json_encode($control));
    }
    flock($fh, LOCK_UN);
    fclose($fh);
    if (!$taken) return null;
    if (!empty($taken['delay'])) {
        usleep((int) round(((float) $taken['delay']) * 1000000));
    }
    $status = (int) ($taken['status'] ?? 500);
    if ($status === 0) return null;  // only delayed: the real answer goes out
    $response = new WP_REST_Response(
        ['code' => $taken['code'] ?? 'copydesk_test_fault',
         'message' => $taken['message'] ?? 'Failure injected by the test harness.',
         'data' => ['status' => $status]],
        $status
    );
    if (isset($taken['retry_after'])) {
        $response->header('Retry-After', (string) $taken['retry_after']);
    }
    return $response;
}

function copydesk_test_control_flag(string $name) {
    if (!file_exists(COPYDESK_TEST_CONTROL)) return null;
    $control = json_decode((string) file_get_contents(COPYDESK_TEST_CONTROL), true) ?: [];
    return $control[$name] ?? null;
}

add_filter('rest_pre_dispatch', function ($result, $server, $request) {
    return copydesk_test_take_fault('before', $request) ?? $result;
}, 0, 3);

add_filter('rest_post_dispatch', function ($response, $server, $request) {
    return copydesk_test_take_fault('after', $request) ?? $response;
}, 1000, 3);

add_filter('rest_post_dispatch', function ($response, $server, $request) {
    $line = json_encode(['m' => $request->get_method(), 'route' => $request->get_route(),
                         'status' => $response->get_status(),
                         'ms' => round((microtime(true) - $_SERVER['REQUEST_TIME_FLOAT']) * 1000, 1)]);
    file_put_contents(COPYDESK_TEST_REQUESTS, $line . "\n", FILE_APPEND | LOCK_EX);
    return $response;
}, PHP_INT_MAX, 3);

add_filter('wp_is_application_passwords_available', function ($available) {
    $flag = copydesk_test_control_flag('app_passwords');
    return $flag === null ? $available : (bool) $flag;
}, 100);
