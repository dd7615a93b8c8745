<?php
// Installs WordPress into a fresh database from PHP (no wp-cli, no HTTP) and prints JSON:
// {"user_id": 1, "app_password": "..."}. Run as: php install.php SITE_DIR, with WPT_* in the
// environment. The database is created here; wp-config.php in SITE_DIR names it.
$site = $argv[1];
$env = fn(string $k, string $d = '') => getenv($k) === false ? $d : getenv($k);

// 1. The database.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli($env('WPT_DB_HOST'), $env('WPT_DB_USER'), $env('WPT_DB_PASSWORD'), '',
                 (int) $env('WPT_DB_PORT', '3306'), $env('WPT_DB_SOCKET') ?: null);
$name = $env('WPT_DB_NAME');
$db->query("CREATE DATABASE `$name` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
$db->close();

// 2. WordPress, with all outgoing HTTP blocked and no e-mail.
$url = parse_url($env('WPT_URL'));
$_SERVER['HTTP_HOST'] = $url['host'] . ':' . $url['port'];
$_SERVER['SERVER_NAME'] = $url['host'];
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
define('WP_INSTALLING', true);
function wp_new_blog_notification() {}  // pluggable: no mail from the install
require $site . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
add_filter('pre_http_request', fn() => new WP_Error('http_blocked', 'HTTP is blocked while installing'), 1, 0);

$result = wp_install('Copydesk test site', 'admin', 'admin@example.org', false, '',
                     wp_slash($env('WPT_ADMIN_PASSWORD')));
$user_id = (int) $result['user_id'];

// The sample post, page and privacy page would only get in the way of counting posts.
foreach (get_posts(['post_type' => 'any', 'post_status' => 'any', 'numberposts' => -1]) as $post) {
    wp_delete_post($post->ID, true);
}

// 3. Pretty permalinks (wp_install only turns them on after a loopback request, which is blocked).
global $wp_rewrite;
$structure = $env('WPT_PERMALINKS');
$wp_rewrite->set_permalink_structure($structure);
$wp_rewrite->flush_rules(false);

// 4. An application password for the REST API (its REST endpoint needs cookie + nonce auth).
[$password] = WP_Application_Passwords::create_new_application_password($user_id, ['name' => 'copydesk-tests']);
echo json_encode(['user_id' => $user_id, 'app_password' => $password]), "\n";
