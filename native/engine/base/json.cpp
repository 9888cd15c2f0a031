#include "base/json.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace ovd {

class JsonParser {
public:
    JsonParser(const std::string& text, const std::string& source) : m_text(text), m_source(source) {}

    Json parse_document() {
        if (m_text.compare(0, 3, "\xEF\xBB\xBF") == 0) m_pos = 3;  // tolerate a UTF-8 byte order mark
        Json value = parse_value(0);
        skip_whitespace();
        if (m_pos != m_text.size()) fail("unexpected trailing characters");
        return value;
    }

private:
    static constexpr int kMaxDepth = 512;
    const std::string& m_text;
    const std::string& m_source;
    size_t m_pos = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("JSON parse error in " + m_source + " at byte " + std::to_string(m_pos) + ": " + what);
    }
    bool at_end() const { return m_pos >= m_text.size(); }
    char peek() const { return at_end() ? '\0' : m_text[m_pos]; }

    void skip_whitespace() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++m_pos;
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++m_pos;
    }
    void expect_word(const char* word) {
        for (const char* p = word; *p; ++p, ++m_pos)
            if (peek() != *p) fail(std::string("invalid literal, expected '") + word + "'");
    }

    Json parse_value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        skip_whitespace();
        if (at_end()) fail("unexpected end of input");
        switch (peek()) {
            case '{': return parse_object(depth);
            case '[': return parse_array(depth);
            case '"': return Json(parse_string());
            case 't': expect_word("true"); return Json(true);
            case 'f': expect_word("false"); return Json(false);
            case 'n': expect_word("null"); return Json();
            default: return parse_number();
        }
    }

    Json parse_object(int depth) {
        Json obj = Json::object();
        expect('{');
        skip_whitespace();
        if (peek() == '}') {
            ++m_pos;
            return obj;
        }
        for (;;) {
            skip_whitespace();
            if (peek() != '"') fail("expected a string key");
            std::string key = parse_string();
            skip_whitespace();
            expect(':');
            obj.set(key, parse_value(depth + 1));
            skip_whitespace();
            if (peek() == ',') {
                ++m_pos;
                continue;
            }
            expect('}');
            return obj;
        }
    }

    Json parse_array(int depth) {
        Json arr = Json::array();
        expect('[');
        skip_whitespace();
        if (peek() == ']') {
            ++m_pos;
            return arr;
        }
        for (;;) {
            arr.push_back(parse_value(depth + 1));
            skip_whitespace();
            if (peek() == ',') {
                ++m_pos;
                continue;
            }
            expect(']');
            return arr;
        }
    }

    unsigned parse_hex4() {
        if (m_pos + 4 > m_text.size()) fail("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = m_text[m_pos++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                fail("invalid hex digit in \\u escape");
        }
        return v;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            char c = m_text[m_pos];
            if (c == '"') {
                ++m_pos;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                ++m_pos;
                continue;
            }
            ++m_pos;
            if (at_end()) fail("unterminated escape");
            char e = m_text[m_pos++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = parse_hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (m_text.compare(m_pos, 2, "\\u") != 0) fail("unpaired high surrogate");
                        m_pos += 2;
                        unsigned low = parse_hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail("invalid low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: --m_pos; fail("invalid escape character");
            }
        }
    }

    Json parse_number() {
        const size_t start = m_pos;
        auto digits = [&] {
            size_t n = 0;
            while (!at_end() && peek() >= '0' && peek() <= '9') {
                ++m_pos;
                ++n;
            }
            return n;
        };
        bool integer = true;
        if (peek() == '-') ++m_pos;
        if (peek() == '0') {
            ++m_pos;
            if (peek() >= '0' && peek() <= '9') fail("leading zeros are not allowed");
        } else if (digits() == 0) {
            fail("unexpected character");
        }
        if (peek() == '.') {
            integer = false;
            ++m_pos;
            if (digits() == 0) fail("expected digits after decimal point");
        }
        if (peek() == 'e' || peek() == 'E') {
            integer = false;
            ++m_pos;
            if (peek() == '+' || peek() == '-') ++m_pos;
            if (digits() == 0) fail("expected exponent digits");
        }
        double value = 0.0;
        const char* first = m_text.data() + start;
        auto res = std::from_chars(first, m_text.data() + m_pos, value);
        if (res.ec == std::errc::result_out_of_range) {
            m_pos = start;
            fail("number out of range");
        }
        Json number(value);
        number.m_integer = integer;
        return number;
    }
};

Json Json::array(Array items) {
    Json j;
    j.m_type = Type::Array;
    j.m_array = std::move(items);
    return j;
}

Json Json::object(Object members) {
    Json j;
    j.m_type = Type::Object;
    for (auto& m : members) j.set(m.first, std::move(m.second));
    return j;
}

Json Json::parse(const std::string& text, const std::string& source_name) { return JsonParser(text, source_name).parse_document(); }

Json Json::parse_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open JSON file " + path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return parse(buffer.str(), path);
}

void Json::type_error(const char* wanted) const { throw std::invalid_argument(std::string("JSON value is not ") + wanted + ": " + dump()); }

bool Json::as_bool() const {
    if (!is_bool()) type_error("a boolean");
    return m_bool;
}

double Json::as_double() const {
    if (!is_number()) type_error("a number");
    return m_number;
}

int64_t Json::as_int() const {
    if (!is_number() || std::trunc(m_number) != m_number || std::fabs(m_number) > 9.2e18) type_error("an integer");
    return static_cast<int64_t>(m_number);
}

const std::string& Json::as_string() const {
    if (!is_string()) type_error("a string");
    return m_string;
}

const Json::Array& Json::as_array() const {
    if (!is_array()) type_error("an array");
    return m_array;
}

const Json::Object& Json::as_object() const {
    if (!is_object()) type_error("an object");
    return m_object;
}

size_t Json::size() const {
    if (is_array()) return m_array.size();
    if (is_object()) return m_object.size();
    type_error("an array or object");
}

const Json* Json::find(const std::string& key) const {
    if (!is_object()) return nullptr;
    for (const auto& m : m_object)
        if (m.first == key) return &m.second;
    return nullptr;
}

bool Json::has(const std::string& key) const { return find(key) != nullptr; }

const Json& Json::at(const std::string& key) const {
    if (!is_object()) type_error("an object");
    const Json* v = find(key);
    if (!v) throw std::out_of_range("JSON object has no key '" + key + "'");
    return *v;
}

const Json& Json::at(size_t index) const {
    const Array& arr = as_array();
    if (index >= arr.size()) throw std::out_of_range("JSON array index " + std::to_string(index) + " out of range");
    return arr[index];
}

Json& Json::set(const std::string& key, Json value) {
    if (!is_object()) type_error("an object");
    for (auto& m : m_object) {
        if (m.first == key) {
            m.second = std::move(value);
            return m.second;
        }
    }
    m_object.emplace_back(key, std::move(value));
    return m_object.back().second;
}

Json& Json::push_back(Json value) {
    if (!is_array()) type_error("an array");
    m_array.push_back(std::move(value));
    return m_array.back();
}

static void dump_string(std::string& out, const std::string& s) {
    static const char* hex = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (u < 0x20) {
                    out += "\\u00";
                    out += hex[u >> 4];
                    out += hex[u & 15];
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

static void dump_number(std::string& out, double v, bool integer) {
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    char buf[64];
    std::to_chars_result res;
    if (integer && std::fabs(v) < 9.2e18)
        res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    else
        res = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back to the same double
    out.append(buf, res.ptr);
}

static void dump_value(std::string& out, const Json& j) {
    switch (j.type()) {
        case Json::Type::Null: out += "null"; break;
        case Json::Type::Bool: out += j.as_bool() ? "true" : "false"; break;
        case Json::Type::Number: dump_number(out, j.as_double(), j.is_integer()); break;
        case Json::Type::String: dump_string(out, j.as_string()); break;
        case Json::Type::Array: {
            out += '[';
            bool first = true;
            for (const Json& item : j.as_array()) {
                if (!first) out += ',';
                first = false;
                dump_value(out, item);
            }
            out += ']';
            break;
        }
        case Json::Type::Object: {
            out += '{';
            bool first = true;
            for (const auto& m : j.as_object()) {
                if (!first) out += ',';
                first = false;
                dump_string(out, m.first);
                out += ':';
                dump_value(out, m.second);
            }
            out += '}';
            break;
        }
    }
}

std::string Json::dump() const {
    std::string out;
    dump_value(out, *this);
    return out;
}

bool operator==(const Json& a, const Json& b) {
    if (a.m_type != b.m_type) return false;
    switch (a.m_type) {
        case Json::Type::Null: return true;
        case Json::Type::Bool: return a.m_bool == b.m_bool;
        case Json::Type::Number: return a.m_number == b.m_number;
        case Json::Type::String: return a.m_string == b.m_string;
        case Json::Type::Array: return a.m_array == b.m_array;
        case Json::Type::Object: return a.m_object == b.m_object;
    }
    return false;
}

}  // namespace ovd
