"""Stack.rest_api(): what the gateway takes from the template's Api, parameters resolved."""

from __future__ import annotations

from devkit.template import Stack


def test_the_templates_api():
    api = Stack(parameters={"Stage": "prod", "CorsAllowOrigin": "https://app.example"}).rest_api()
    assert api is not None
    assert (api.logical_id, api.stage) == ("Api", "prod")
    assert api.cors.allow_origin == "https://app.example"
    assert (api.cors.allow_methods, api.cors.max_age) == ("GET,POST,OPTIONS", "600")
    assert api.preflight_needs_key is False  # AddApiKeyRequiredToCorsPreflight: false
    assert set(api.gateway_responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    default = api.gateway_responses["DEFAULT_4XX"]
    assert default.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert default.templates["application/json"] == '{"error": $context.error.messageString}'


def test_shorthand_cors_globals_and_binary_media_types():
    template = {
        "Globals": {"Api": {"Cors": "'*'", "BinaryMediaTypes": ["image~1png"]}},
        "Resources": {
            "MyApi": {
                "Type": "AWS::Serverless::Api",
                "Properties": {"StageName": "v1", "Auth": {"ApiKeyRequired": True}},
            }
        },
    }
    api = Stack(template=template).rest_api()
    assert api is not None
    assert (api.stage, api.cors.allow_origin, api.cors.allow_methods) == ("v1", "*", None)
    assert api.binary_media_types == ["image/png"]
    assert api.preflight_needs_key is True  # SAM's default for AddApiKeyRequiredToCorsPreflight
    assert Stack(template={"Resources": {}}).rest_api() is None
