// Small strict JSON value and parser (RFC 8259), enough for model config files.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ovd {

class Json {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };
    using Array = std::vector<Json>;
    using Member = std::pair<std::string, Json>;
    using Object = std::vector<Member>;  // keeps file order; a repeated key keeps its last value

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool b) : m_type(Type::Bool), m_bool(b) {}
    Json(double d) : m_type(Type::Number), m_number(d) {}
    template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Json(I v) : m_type(Type::Number), m_number(static_cast<double>(v)), m_integer(true) {}
    Json(const char* s) : m_type(Type::String), m_string(s) {}
    Json(std::string s) : m_type(Type::String), m_string(std::move(s)) {}
    static Json array(Array items = {});
    static Json object(Object members = {});

    // `source_name` only labels error messages.
    static Json parse(const std::string& text, const std::string& source_name = "<string>");
    static Json parse_file(const std::string& path);

    Type type() const { return m_type; }
    bool is_null() const { return m_type == Type::Null; }
    bool is_bool() const { return m_type == Type::Bool; }
    bool is_number() const { return m_type == Type::Number; }
    bool is_integer() const { return m_type == Type::Number && m_integer; }  // written without fraction/exponent
    bool is_string() const { return m_type == Type::String; }
    bool is_array() const { return m_type == Type::Array; }
    bool is_object() const { return m_type == Type::Object; }

    bool as_bool() const;
    double as_double() const;
    int64_t as_int() const;  // integral numbers only
    const std::string& as_string() const;
    const Array& as_array() const;
    const Object& as_object() const;

    size_t size() const;                           // array/object element count
    bool has(const std::string& key) const;        // object has the key (even if its value is null)
    const Json& at(const std::string& key) const;  // throws std::out_of_range if missing
    const Json& at(size_t index) const;
    const Json* find(const std::string& key) const;  // nullptr if missing or not an object

    // Missing key or null value -> fallback. A present value of an incompatible type throws
    // std::invalid_argument naming the key. Numbers convert to any arithmetic T (truncating
    // towards zero for integers) and booleans convert to numbers, as the oracle's JSON library does.
    template <typename T>
    T get_or(const std::string& key, T fallback) const;

    Json& set(const std::string& key, Json value);  // object only
    Json& push_back(Json value);                    // array only

    std::string dump() const;  // compact, keys in stored order

    friend bool operator==(const Json& a, const Json& b);
    friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }

private:
    Type m_type = Type::Null;
    bool m_bool = false;
    double m_number = 0.0;
    bool m_integer = false;
    std::string m_string;
    Array m_array;
    Object m_object;

    [[noreturn]] void type_error(const char* wanted) const;
    template <typename T>
    static T convert(const Json& v, const std::string& key);

    friend class JsonParser;
};

template <typename T>
T Json::convert(const Json& v, const std::string& key) {
    if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_bool()) throw std::invalid_argument("JSON key '" + key + "' must be a boolean, got " + v.dump());
        return v.m_bool;
    } else if constexpr (std::is_arithmetic_v<T>) {
        if (v.is_bool()) return static_cast<T>(v.m_bool);
        if (!v.is_number()) throw std::invalid_argument("JSON key '" + key + "' must be a number, got " + v.dump());
        return static_cast<T>(v.m_number);
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) throw std::invalid_argument("JSON key '" + key + "' must be a string, got " + v.dump());
        return v.m_string;
    } else {  // std::vector<E>
        if (!v.is_array()) throw std::invalid_argument("JSON key '" + key + "' must be an array, got " + v.dump());
        T out;
        for (const Json& item : v.m_array) out.push_back(convert<typename T::value_type>(item, key));
        return out;
    }
}

template <typename T>
T Json::get_or(const std::string& key, T fallback) const {
    const Json* v = find(key);
    if (!v || v->is_null()) return fallback;
    return convert<T>(*v, key);
}

}  // namespace ovd
