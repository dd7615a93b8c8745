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
 * (ms: time spent in PHP so far, from the request's start; "fault": the random fault it got).
 *
 * Random faults (tests/servers/faults.py computes the same decisions in Python):
 *   {"random": {"ratio": 0.3, "seed": 1, "mix": {"429": 1, "500": 1, "timeout": 1}, "retry_after": 1,
 *               "delay": 6, "after": 0.5, "method": "", "route": "", "seen": 0, "served": {}}}
 * Each REST request that no queued fault took, matches method/route and does not carry the header
 * X-Copydesk-Test-Bypass (the harness's own reads) is numbered n = 1, 2, …; u1, u2, u3 are three
 * 32-bit slices of md5("seed:n") / 2^32. It fails when u1 < ratio, with the kind picked by u2 from
 * mix, after WordPress did the work (the answer is lost) when u3 < after. "timeout" holds the request
 * `delay` seconds (past the client's timeout), then answers 503 (before) or the real answer (after).
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

function copydesk_test_uniforms($seed, int $n): array {
    $h = md5($seed . ':' . $n);
    return [hexdec(substr($h, 0, 8)) / 4294967296, hexdec(substr($h, 8, 8)) / 4294967296,
            hexdec(substr($h, 16, 8)) / 4294967296];
}

function copydesk_test_pick(array $mix, float $u): string {
    $total = array_sum($mix);
    $acc = 0.0;
    $kind = '';
    foreach ($mix as $name => $weight) {
        if ($weight <= 0) continue;
        $kind = (string) $name;
        $acc += $weight / $total;
        if ($u < $acc) return $kind;
    }
    return $kind;
}

/** The random fault of this request, or null (see the header). */
function copydesk_test_take_random(WP_REST_Request $request) {
    if ($request->get_header('x-copydesk-test-bypass')) return null;
    $file = COPYDESK_TEST_CONTROL;
    if (!file_exists($file)) return null;
    $fh = fopen($file, 'c+');
    flock($fh, LOCK_EX);
    $control = json_decode(stream_get_contents($fh) ?: '{}', true) ?: [];
    $rule = $control['random'] ?? null;
    $taken = null;
    if ($rule && ($rule['ratio'] ?? 0) > 0
        && (empty($rule['method']) || strcasecmp($rule['method'], $request->get_method()) === 0)
        && (empty($rule['route']) || preg_match($rule['route'], $request->get_route()))) {
        $n = ($rule['seen'] ?? 0) + 1;
        $control['random']['seen'] = $n;
        [$u1, $u2, $u3] = copydesk_test_uniforms($rule['seed'] ?? 0, $n);
        if ($u1 < $rule['ratio']) {
            $kind = copydesk_test_pick($rule['mix'] ?? ['429' => 1, '500' => 1, 'timeout' => 1], $u2);
            $served = $control['random']['served'] ?? [];
            $served[$kind] = ($served[$kind] ?? 0) + 1;
            $control['random']['served'] = $served;
            $taken = ['kind' => $kind, 'after' => $u3 < ($rule['after'] ?? 0), 'n' => $n,
                      'retry_after' => $rule['retry_after'] ?? 1, 'delay' => $rule['delay'] ?? 5];
        }
        ftruncate($fh, 0);
        rewind($fh);
        fwrite($fh, json_encode($control));
    }
    flock($fh, LOCK_UN);
    fclose($fh);
    return $taken;
}

function copydesk_test_random_answer(array $taken, $response) {
    $GLOBALS['copydesk_test_fault'] = $taken['kind'] . ($taken['after'] ? '-after' : '');
    if ($taken['kind'] === 'timeout') {
        usleep((int) round(((float) $taken['delay']) * 1000000));
        if ($taken['after']) return $response;  // the real answer, after the client gave up
        $status = 503;
    } else {
        $status = (int) $taken['kind'];
    }
    $error = new WP_REST_Response(
        ['code' => 'copydesk_test_random_fault',
         'message' => "Random failure $status injected by the test harness (request {$taken['n']}).",
         'data' => ['status' => $status]],
        $status
    );
    if ($status === 429) {
        $error->header('Retry-After', (string) $taken['retry_after']);
    }
    return $error;
}

function copydesk_test_control_flag(string $name) {
    if (!file_exists(COPYDESK_TEST_CONTROL)) return null;
    $control = json_decode((string) file_get_contents(COPYDESK_TEST_CONTROL), true) ?: [];
    return $control[$name] ?? null;
}

add_filter('rest_pre_dispatch', function ($result, $server, $request) {
    $scripted = copydesk_test_take_fault('before', $request);
    if ($scripted !== null) return $scripted;
    $taken = copydesk_test_take_random($request);
    if ($taken === null) return $result;
    if ($taken['after']) {
        $GLOBALS['copydesk_test_random_after'] = $taken;  // applied once WordPress did the work
        return $result;
    }
    return copydesk_test_random_answer($taken, $result);
}, 0, 3);

add_filter('rest_post_dispatch', function ($response, $server, $request) {
    $scripted = copydesk_test_take_fault('after', $request);
    if ($scripted !== null) return $scripted;
    $taken = $GLOBALS['copydesk_test_random_after'] ?? null;
    if ($taken === null) return $response;
    unset($GLOBALS['copydesk_test_random_after']);
    return copydesk_test_random_answer($taken, $response);
}, 1000, 3);

add_filter('rest_post_dispatch', function ($response, $server, $request) {
    $entry = ['m' => $request->get_method(), 'route' => $request->get_route(),
              'status' => $response->get_status(),
              'ms' => round((microtime(true) - $_SERVER['REQUEST_TIME_FLOAT']) * 1000, 1),
              't' => $_SERVER['REQUEST_TIME_FLOAT']];
    if (!empty($GLOBALS['copydesk_test_fault'])) $entry['fault'] = $GLOBALS['copydesk_test_fault'];
    $line = json_encode($entry);
    file_put_contents(COPYDESK_TEST_REQUESTS, $line . "\n", FILE_APPEND | LOCK_EX);
    return $response;
}, PHP_INT_MAX, 3);

add_filter('wp_is_application_passwords_available', function ($available) {
    $flag = copydesk_test_control_flag('app_passwords');
    return $flag === null ? $available : (bool) $flag;
}, 100);

// WordPress 6.3+ registers the post meta `footnotes`, where the core/footnotes block keeps its notes
// (the block markup refers to them by id). This site (6.1) gets the same registration, so the notes
// Copydesk sends with a post can be read back.
add_action('init', function () {
    if (!registered_meta_key_exists('post', 'footnotes', 'post')) {
        register_post_meta('post', 'footnotes', ['show_in_rest' => true, 'single' => true, 'type' => 'string']);
    }
});
